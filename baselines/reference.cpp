// Method "reference": the float64 oracle every other method is scored against. Plain loops, on purpose.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attnbench/method.hpp"

namespace attnbench {
namespace {

class ReferencePlan final : public Plan {
 public:
  ReferencePlan(const Problem& p, std::int64_t row_stride) : p_(p), stride_(row_stride) {}

  // For each (b, h, q): s_k = scale·q·k_k over the keys the mask allows, p = softmax(s) computed as
  // exp(s_k − max s) / Σ exp(s_j − max s), o = Σ_k p_k·v_k. A row with no allowed key is all zeros.
  void run(const Inputs& in, Tensor& out) override {
    const Problem& p = p_;
    const Mask& mask = *p.mask;
    const std::int64_t B = p.batch, H = p.heads, Hkv = p.kv_heads, Lq = p.q_len, Lk = p.kv_len;
    const std::int64_t D = p.head_dim, Dv = p.value_dim;
    // Inputs widened to double once; every product and sum below is in double.
    const std::vector<double> Q = in.q.to_f64(), K = in.k.to_f64(), V = in.v.to_f64();

#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (std::int64_t b = 0; b < B; ++b) {
      for (std::int64_t h = 0; h < H; ++h) {
        const std::int64_t kvh = p.kv_head_of(h);
        std::vector<double> score(static_cast<std::size_t>(Lk));
        std::vector<char> allowed(static_cast<std::size_t>(Lk));
        std::vector<double> row(static_cast<std::size_t>(Dv));
        for (std::int64_t q = 0; q < Lq; ++q) {
          const double* qv = &Q[((b * H + h) * Lq + q) * D];
          const std::int64_t o_at = ((b * H + h) * Lq + q) * Dv;
          if (q % stride_ != 0 && q != Lq - 1) {  // a row the sampled oracle skips
            for (std::int64_t c = 0; c < Dv; ++c) out.set(o_at + c, std::nan(""));
            continue;
          }

          bool any = false;
          double max_score = -INFINITY;
          for (std::int64_t k = 0; k < Lk; ++k) {
            allowed[k] = mask.allowed(b, h, q, k);
            if (!allowed[k]) continue;
            const double* kv = &K[((b * Hkv + kvh) * Lk + k) * D];
            double dot = 0.0;
            // Vectorised: the order of a float64 sum of D terms moves the result by ~1e-16, far
            // below the 1e-5 that fp32 methods are held to.
#pragma omp simd reduction(+ : dot)
            for (std::int64_t d = 0; d < D; ++d) dot += qv[d] * kv[d];
            score[k] = p.scale * dot;
            max_score = any ? std::max(max_score, score[k]) : score[k];
            any = true;
          }

          if (!any) {
            for (std::int64_t c = 0; c < Dv; ++c) out.set(o_at + c, 0.0);
            continue;
          }

          double denom = 0.0;
          for (std::int64_t k = 0; k < Lk; ++k)
            if (allowed[k]) denom += (score[k] = std::exp(score[k] - max_score));

          std::fill(row.begin(), row.end(), 0.0);
          for (std::int64_t k = 0; k < Lk; ++k) {
            if (!allowed[k]) continue;
            const double weight = score[k] / denom;
            const double* vv = &V[((b * Hkv + kvh) * Lk + k) * Dv];
#pragma omp simd
            for (std::int64_t c = 0; c < Dv; ++c) row[c] += weight * vv[c];
          }
          for (std::int64_t c = 0; c < Dv; ++c) out.set(o_at + c, row[c]);
        }
      }
    }
  }

 private:
  Problem p_;
  std::int64_t stride_ = 1;
};

class Reference final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "reference";
    m.family = Family::exact;
    m.summary = "float64 exact attention in plain loops: the oracle other methods are scored against";
    m.reference = "Vaswani et al., Attention Is All You Need (2017)";
    m.backends = {"cpu"};
    m.params = {ParamSpec::integer("row_stride", 1, 1, std::int64_t{1} << 30,
                                   "compute every N-th query row of each (batch, head) and the last; the others "
                                   "are NaN (a sampled oracle for long cells: tasks' check_every)")};
    return m;
  }

  // supports(), flops() and bytes(): Method's defaults (CPU backend, heads a multiple of kv_heads,
  // exact attention's counts).
  Dtype output_dtype(const Problem&) const override { return Dtype::f64; }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<ReferencePlan>(p, params.integer("row_stride"));
  }
};

ATTNBENCH_REGISTER_METHOD(Reference);

}  // namespace
}  // namespace attnbench
