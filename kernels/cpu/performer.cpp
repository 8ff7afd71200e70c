// Method "performer": FAVOR+ (Choromanski et al. 2021), softmax attention estimated with positive
// orthogonal random features drawn once in plan(); non-causal by one summary per kv head, causal by
// prefix sums.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attnbench/method.hpp"
#include "attnbench/rng.hpp"
#include "kernels/cpu/linear_core.hpp"

namespace attnbench {
namespace {

// The random projection W [m][D]: stacked blocks of D orthonormal rows (Gram-Schmidt of a Gaussian
// matrix), each row then given the length of an independent D-dimensional Gaussian vector (a chi(D)
// sample), so that every row is marginally N(0, I) while rows of a block stay exactly orthogonal — the
// paper's orthogonal random features, which lower the estimator's variance. The last block is cut to
// the m mod D rows still missing.
std::vector<double> orthogonal_gaussian_rows(std::int64_t m, std::int64_t D, std::uint64_t seed) {
  Rng rng(derive_seed(seed, "performer/features"));
  std::vector<double> w(static_cast<std::size_t>(m * D));
  std::vector<double> block(static_cast<std::size_t>(D * D));
  for (std::int64_t r0 = 0; r0 < m; r0 += D) {
    for (double& x : block) x = rng.normal();
    // Modified Gram-Schmidt over the rows; a Gaussian matrix is full rank with probability one.
    for (std::int64_t i = 0; i < D; ++i) {
      double* row = block.data() + i * D;
      for (std::int64_t j = 0; j < i; ++j) {
        const double* prev = block.data() + j * D;
        double dot = 0;
        for (std::int64_t d = 0; d < D; ++d) dot += row[d] * prev[d];
        for (std::int64_t d = 0; d < D; ++d) row[d] -= dot * prev[d];
      }
      double norm = 0;
      for (std::int64_t d = 0; d < D; ++d) norm += row[d] * row[d];
      norm = std::sqrt(norm);
      for (std::int64_t d = 0; d < D; ++d) row[d] /= norm;
    }
    for (std::int64_t i = 0; i < std::min(D, m - r0); ++i) {
      double chi = 0;
      for (std::int64_t d = 0; d < D; ++d) {
        const double g = rng.normal();
        chi += g * g;
      }
      chi = std::sqrt(chi);
      for (std::int64_t d = 0; d < D; ++d) w[(r0 + i) * D + d] = chi * block[i * D + d];
    }
  }
  return w;
}

// φ(x) = exp(Wx − |x|²/2) / √m on x = scale^{1/2}·q (or k), so that E[φ(q)ᵀφ(k)] = exp(scale·qᵀk), the
// softmax kernel. √scale is folded into W once. A query's factors exp(−|x|²/2)/√m and the
// max-stabiliser exp(−max_r w_rᵀx) are common to its row and cancel in the normalisation, so they are
// dropped; a key returns its stabiliser c = max_r (w_rᵀx − |x|²/2) for the core to reconcile.
struct FavorFeatures {
  std::int64_t m = 0, dim = 0;
  double scale = 1.0;
  const float* w = nullptr;  // [m][dim], already multiplied by √scale

  std::int64_t features() const { return m; }
  void project(const float* x, float* u) const {
    for (std::int64_t r = 0; r < m; ++r) {
      const float* __restrict wr = w + r * dim;
      float dot = 0.0f;
      for (std::int64_t d = 0; d < dim; ++d) dot += wr[d] * x[d];
      u[r] = dot;
    }
  }
  static float exp_minus_max(float* u, std::int64_t n) {
    const float top = *std::max_element(u, u + n);
    for (std::int64_t r = 0; r < n; ++r) u[r] = std::exp(u[r] - top);
    return top;
  }
  void query(const float* q, std::int64_t, float* phi) const {
    project(q, phi);
    exp_minus_max(phi, m);
  }
  float key(const float* k, std::int64_t, float* phi) const {
    project(k, phi);
    float sq = 0.0f;
    for (std::int64_t d = 0; d < dim; ++d) sq += k[d] * k[d];
    const float half = static_cast<float>(0.5 * scale) * sq;
    return exp_minus_max(phi, m) - half;
  }
};

class PerformerPlan final : public Plan {
 public:
  PerformerPlan(const Problem& p, std::int64_t m, std::uint64_t seed)
      : problem_(p), w_(static_cast<std::size_t>(m * p.head_dim)), workspace_(p, m, omp_get_max_threads()) {
    const std::vector<double> w = orthogonal_gaussian_rows(m, p.head_dim, seed);
    const double root_scale = std::sqrt(p.scale);
    for (std::size_t i = 0; i < w.size(); ++i) w_.data()[i] = static_cast<float>(w[i] * root_scale);
    features_ = FavorFeatures{m, p.head_dim, p.scale, w_.data()};
  }
  void run(const Inputs& in, Tensor& out) override {
    kernels::linear_attention_forward(problem_, in, out, features_, workspace_);
  }

 private:
  Problem problem_;
  kernels::AlignedFloats w_;
  FavorFeatures features_;
  kernels::LinearWorkspace workspace_;
};

class Performer final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "performer";
    m.family = Family::linear;
    m.summary =
        "FAVOR+: softmax attention estimated by positive orthogonal random features; causal by prefix sums (CPU, "
        "fp32/bf16)";
    m.reference = "Choromanski et al., Rethinking Attention with Performers (2021)";
    m.params = {
        ParamSpec::integer("features", 256, 1, 8192, "random features m (rows of the projection; more: less variance)"),
        ParamSpec::integer("seed", 0, 0, 2147483647, "seed of the random projection, drawn once in plan()")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;
    return kernels::linear_family_supports("performer", p, /*has_causal_form=*/true);
  }

  // The shared linear-attention count with F = m, plus the projection Wx (2·m·D per row) and its exp.
  double flops(const Problem& p, const Params& params) const override {
    const std::int64_t m = params.integer("features");
    const double per_row = 2.0 * static_cast<double>(m) * static_cast<double>(p.head_dim) + static_cast<double>(m);
    return kernels::linear_attention_flops(p, m, per_row, per_row + 2.0 * static_cast<double>(p.head_dim));
  }
  // Q, K, V in and O out, plus the projection W (m·D fp32) read once.
  double bytes(const Problem& p, const Params& params) const override {
    return attention_bytes(p) + 4.0 * static_cast<double>(params.integer("features") * p.head_dim);
  }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<PerformerPlan>(p, params.integer("features"),
                                           static_cast<std::uint64_t>(params.integer("seed")));
  }
};

ATTNBENCH_REGISTER_METHOD(Performer);

}  // namespace
}  // namespace attnbench
