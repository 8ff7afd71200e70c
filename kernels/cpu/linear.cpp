// Method "linear": linear attention with the feature map φ(x) = elu(x) + 1 (Katharopoulos et al. 2020),
// non-causal by one key-value summary per kv head, causal by running prefix sums.
#include <omp.h>

#include <cmath>

#include "attnbench/method.hpp"
#include "kernels/cpu/linear_core.hpp"

namespace attnbench {
namespace {

// φ(x) = elu(x) + 1 element-wise: x + 1 for x > 0, exp(x) otherwise; always positive, so every query
// that sees a key has a positive denominator. The paper applies it to q and k as they are: the
// problem's softmax scale is not used (it is a softmax temperature, and there is no softmax here).
struct EluFeatures {
  std::int64_t dim = 0;
  std::int64_t features() const { return dim; }
  static float elu1(float x) { return x > 0.0f ? x + 1.0f : std::exp(x); }
  void query(const float* q, std::int64_t, float* phi) const {
    for (std::int64_t d = 0; d < dim; ++d) phi[d] = elu1(q[d]);
  }
  float key(const float* k, std::int64_t, float* phi) const {
    for (std::int64_t d = 0; d < dim; ++d) phi[d] = elu1(k[d]);
    return 0.0f;
  }
};

class LinearPlan final : public Plan {
 public:
  explicit LinearPlan(const Problem& p)
      : problem_(p), features_{p.head_dim}, workspace_(p, p.head_dim, omp_get_max_threads()) {}
  void run(const Inputs& in, Tensor& out) override {
    kernels::linear_attention_forward(problem_, in, out, features_, workspace_);
  }

 private:
  Problem problem_;
  EluFeatures features_;
  kernels::LinearWorkspace workspace_;
};

class Linear final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "linear";
    m.family = Family::linear;
    m.summary = "linear attention, φ(x) = elu(x)+1, normalised; causal by prefix sums; O(L·D·Dv) (CPU, fp32/bf16)";
    m.reference =
        "Katharopoulos et al., Transformers are RNNs: Fast Autoregressive Transformers with Linear Attention (2020)";
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;
    return kernels::linear_family_supports("linear", p, /*has_causal_form=*/true);
  }

  // The shared linear-attention count with F = D features, plus the feature map itself (one op per entry).
  double flops(const Problem& p, const Params&) const override {
    const double D = static_cast<double>(p.head_dim);
    return kernels::linear_attention_flops(p, p.head_dim, D, D);
  }
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params&, const Device&) const override {
    return std::make_unique<LinearPlan>(p);
  }
};

ATTNBENCH_REGISTER_METHOD(Linear);

}  // namespace
}  // namespace attnbench
