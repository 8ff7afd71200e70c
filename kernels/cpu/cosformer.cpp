// Method "cosformer": cosFormer (Qin et al. 2022), linear attention with ReLU features and a cos
// re-weighting of distance, decomposed into cos and sin terms so that it still factorises; causal by
// prefix sums.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "attnbench/method.hpp"
#include "kernels/cpu/linear_core.hpp"

namespace attnbench {
namespace {

// The similarity relu(q_i)·relu(k_j) · cos(π/2 · (i − j)/M), with M = max(q_len, kv_len) (the paper's
// M, the longest sequence), so |i − j| < M and the weight stays positive. Since
// cos(a − b) = cos a cos b + sin a sin b, it is the dot product of the 2D features
//   φ(x, pos) = [relu(x)·cos(π/2·pos/M), relu(x)·sin(π/2·pos/M)].
// Positions are absolute (query i at i + kv_len − q_len, bottom-right aligned as every mask here is).
// ReLU is positively homogeneous, so the problem's softmax scale would cancel in the normalisation: it
// is not used. A query whose denominator is 0 (no key with a positive similarity) gets a zero row.
struct CosReweightedReluFeatures {
  std::int64_t dim = 0;
  double angle_per_position = 0;  // π / (2M)

  std::int64_t features() const { return 2 * dim; }
  void map(const float* x, std::int64_t pos, float* phi) const {
    const double angle = angle_per_position * static_cast<double>(pos);
    const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
    for (std::int64_t d = 0; d < dim; ++d) {
      const float r = std::max(x[d], 0.0f);
      phi[d] = r * c;
      phi[dim + d] = r * s;
    }
  }
  void query(const float* q, std::int64_t pos, float* phi) const { map(q, pos, phi); }
  float key(const float* k, std::int64_t pos, float* phi) const {
    map(k, pos, phi);
    return 0.0f;
  }
};

class CosformerPlan final : public Plan {
 public:
  explicit CosformerPlan(const Problem& p)
      : problem_(p),
        features_{p.head_dim, std::numbers::pi / (2.0 * static_cast<double>(std::max(p.q_len, p.kv_len)))},
        workspace_(p, 2 * p.head_dim, omp_get_max_threads()) {}
  void run(const Inputs& in, Tensor& out) override {
    kernels::linear_attention_forward(problem_, in, out, features_, workspace_);
  }

 private:
  Problem problem_;
  CosReweightedReluFeatures features_;
  kernels::LinearWorkspace workspace_;
};

class Cosformer final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "cosformer";
    m.family = Family::linear;
    m.summary =
        "cosFormer: ReLU features with cos(π/2·(i−j)/M) re-weighting as cos/sin terms; causal by prefix sums (CPU, "
        "fp32/bf16)";
    m.reference = "Qin et al., cosFormer: Rethinking Softmax in Attention (2022)";
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;
    return kernels::linear_family_supports("cosformer", p, /*has_causal_form=*/true);
  }

  // The shared linear-attention count with F = 2D features, plus the features (3 ops per entry of x:
  // ReLU and the two products; ReLU zeros are skipped at run time, this counts the dense case).
  double flops(const Problem& p, const Params&) const override {
    const double per_row = 3.0 * static_cast<double>(p.head_dim);
    return kernels::linear_attention_flops(p, 2 * p.head_dim, per_row, per_row);
  }
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params&, const Device&) const override {
    return std::make_unique<CosformerPlan>(p);
  }
};

ATTNBENCH_REGISTER_METHOD(Cosformer);

}  // namespace
}  // namespace attnbench
