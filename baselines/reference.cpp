// Method "reference": the float64 oracle every other method is scored against. Plain loops over the
// mask's own predicate, on purpose: no block maps, no tiling of the softmax, nothing a method shares.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attnbench/method.hpp"

namespace attnbench {
namespace {

class ReferencePlan final : public Plan {
 public:
  ReferencePlan(const Problem& p, std::int64_t row_stride) : p_(p), stride_(row_stride) {}

  // For each (b, h, q): s_k = scale·q·k_k over the keys the mask allows (Mask::allowed, element by
  // element: the oracle never trusts a block map), p = softmax(s) computed as
  // exp(s_k − max s) / Σ exp(s_j − max s), o = Σ_k p_k·v_k. A row with no allowed key is all zeros.
  //
  // Rows are taken kRows at a time so that each key and value row, once loaded, serves all of them: at
  // long lengths K and V do not fit in cache, and one row at a time would stream them from memory once
  // per query (twice as slow at L = 16K, D = 128 here). Each row's own arithmetic is the same, in the same
  // order, as row by row.
  void run(const Inputs& in, Tensor& out) override {
    const Problem& p = p_;
    const Mask& mask = *p.mask;
    const std::int64_t B = p.batch, H = p.heads, Hkv = p.kv_heads, Lq = p.q_len, Lk = p.kv_len;
    const std::int64_t D = p.head_dim, Dv = p.value_dim;
    // Inputs widened to double once; every product and sum below is in double.
    const std::vector<double> Q = in.q.to_f64(), K = in.k.to_f64(), V = in.v.to_f64();

    // The rows computed (all, or every stride-th and the last); the others are NaN.
    std::vector<std::int64_t> rows;
    for (std::int64_t q = 0; q < Lq; ++q)
      if (q % stride_ == 0 || q == Lq - 1) rows.push_back(q);
    if (stride_ > 1)
#pragma omp parallel for
      for (std::int64_t bh = 0; bh < B * H; ++bh)
        for (std::int64_t q = 0; q < Lq; ++q)
          if (q % stride_ != 0 && q != Lq - 1)
            for (std::int64_t c = 0; c < Dv; ++c) out.set((bh * Lq + q) * Dv + c, std::nan(""));
    const auto blocks = static_cast<std::int64_t>((rows.size() + kRows - 1) / kRows);

#pragma omp parallel
    {
      std::vector<double> score(static_cast<std::size_t>(kRows * Lk));
      std::vector<char> allowed(static_cast<std::size_t>(kRows * Lk));
      std::vector<double> acc(static_cast<std::size_t>(kRows * Dv));
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t item = 0; item < B * H * blocks; ++item) {
        const std::int64_t bh = item / blocks, b = bh / H, h = bh % H, kvh = p.kv_head_of(h);
        const std::size_t first = static_cast<std::size_t>(item % blocks) * kRows;
        const auto n = static_cast<std::int64_t>(std::min<std::size_t>(kRows, rows.size() - first));
        const std::int64_t* q_of = &rows[first];

        bool any[kRows] = {};
        double max_score[kRows];
        for (std::int64_t k = 0; k < Lk; ++k) {
          const double* kv = &K[((b * Hkv + kvh) * Lk + k) * D];
          for (std::int64_t i = 0; i < n; ++i) {
            char& ok = allowed[i * Lk + k];
            ok = mask.allowed(b, h, q_of[i], k);
            if (!ok) continue;
            const double* qv = &Q[(bh * Lq + q_of[i]) * D];
            double dot = 0.0;
            // Vectorised: the order of a float64 sum of D terms moves the result by ~1e-16, far
            // below the 1e-5 that fp32 methods are held to.
#pragma omp simd reduction(+ : dot)
            for (std::int64_t d = 0; d < D; ++d) dot += qv[d] * kv[d];
            const double sc = score[i * Lk + k] = p.scale * dot;
            max_score[i] = any[i] ? std::max(max_score[i], sc) : sc;
            any[i] = true;
          }
        }

        double denom[kRows];
        for (std::int64_t i = 0; i < n; ++i) {
          denom[i] = 0.0;
          if (!any[i]) continue;
          double* si = &score[i * Lk];
          const char* ai = &allowed[i * Lk];
          for (std::int64_t k = 0; k < Lk; ++k)
            if (ai[k]) denom[i] += (si[k] = std::exp(si[k] - max_score[i]));
        }

        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t k = 0; k < Lk; ++k) {
          const double* vv = &V[((b * Hkv + kvh) * Lk + k) * Dv];
          for (std::int64_t i = 0; i < n; ++i) {
            if (!allowed[i * Lk + k]) continue;
            const double weight = score[i * Lk + k] / denom[i];
            double* row = &acc[i * Dv];
#pragma omp simd
            for (std::int64_t c = 0; c < Dv; ++c) row[c] += weight * vv[c];
          }
        }
        for (std::int64_t i = 0; i < n; ++i) {
          const std::int64_t o_at = (bh * Lq + q_of[i]) * Dv;
          for (std::int64_t c = 0; c < Dv; ++c) out.set(o_at + c, any[i] ? acc[i * Dv + c] : 0.0);
        }
      }
    }
  }

 private:
  static constexpr std::int64_t kRows = 8;  // query rows per work item
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
