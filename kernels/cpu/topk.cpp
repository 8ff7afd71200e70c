// Method "topk": exact top-k attention — each query scores every allowed key and takes the softmax over
// only its k highest-scoring keys.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "attnbench/method.hpp"
#include "kernels/cpu/exact_common.hpp"
#include "kernels/cpu/score_products.hpp"
#include "kernels/cpu/select_top.hpp"

namespace attnbench {
namespace {

using kernels::narrow;
using kernels::widen;

// The keys query q may see: [0, visible) (bottom-right aligned causal mask, or all of them).
std::int64_t visible_keys(const Problem& p, std::int64_t q) {
  if (!p.causal()) return p.kv_len;
  return std::clamp<std::int64_t>(q + p.kv_len - p.q_len + 1, 0, p.kv_len);
}

constexpr std::int64_t kQueryTile = 16;  // queries scored together, sharing each key read

struct TopkScratch {
  std::vector<float> query, score, acc, values;  // [tile][head_dim], [tile][kv_len], [value_dim], [kv_len]
  std::vector<std::int32_t> order;               // [kv_len]
  explicit TopkScratch(const Problem& p)
      : query(static_cast<std::size_t>(kQueryTile * p.head_dim)),
        score(static_cast<std::size_t>(kQueryTile * p.kv_len)),
        acc(static_cast<std::size_t>(p.value_dim)),
        values(static_cast<std::size_t>(p.kv_len)),
        order(static_cast<std::size_t>(p.kv_len)) {}
};

class TopkPlan final : public kernels::Fp32OrBf16Plan<TopkPlan> {
 public:
  TopkPlan(const Problem& p, std::int64_t k)
      : Fp32OrBf16Plan(p.dtype),
        p_(p),
        k_(k),
        keys_t_(static_cast<std::size_t>(p.batch * p.kv_heads * p.head_dim *
                                         kernels::simd::round_up(p.kv_len, kernels::kScoreCols))),
        scratch_(kernels::per_thread_scratch<TopkScratch>(kernels::max_threads(), p)) {}

  // The kernel for stored element type T, called by run().
  template <class T>
  void forward(const kernels::TypedIO<T>& io) {
    const Problem& p = p_;
    const std::int64_t B = p.batch, H = p.heads, Lq = p.q_len, Lk = p.kv_len, D = p.head_dim, Dv = p.value_dim;
    const std::int64_t Lkp = kernels::simd::round_up(Lk, kernels::kScoreCols);
    const float scale = static_cast<float>(p.scale);

    const std::int64_t tiles = (Lq + kQueryTile - 1) / kQueryTile;

#pragma omp parallel num_threads(static_cast <int>(scratch_.size()))
    {
      // Keys in panels of 32, each [d][key] (and widened), so that scores run along keys in vector lanes
      // and each register block reads one contiguous stretch.
#pragma omp for schedule(static)
      for (std::int64_t bkv = 0; bkv < B * p.kv_heads; ++bkv)
        kernels::panel_keys(io.k + bkv * Lk * D, Lk, D, kernels::kScoreCols, keys_t_.data() + bkv * D * Lkp);

      TopkScratch& w = scratch_[static_cast<std::size_t>(omp_get_thread_num())];
      float* qf = w.query.data();
      float* acc = w.acc.data();
      std::int32_t* order = w.order.data();

#pragma omp for collapse(2) schedule(dynamic, 1)
      for (std::int64_t bh = 0; bh < B * H; ++bh) {
        for (std::int64_t tile = 0; tile < tiles; ++tile) {
          const std::int64_t b = bh / H, kvh = p.kv_head_of(bh % H);
          const std::int64_t q0 = tile * kQueryTile, nq = std::min(kQueryTile, Lq - q0);
          for (std::int64_t i = 0; i < nq; ++i)
            for (std::int64_t d = 0; d < D; ++d)
              qf[i * D + d] = widen(io.q[(bh * Lq + q0 + i) * D + d]) * scale;
          // Selection needs every visible score: this is the dense half of the cost. Visibility grows
          // with the query index, so the tile's last query sees the most keys.
          const std::int64_t n_tile = visible_keys(p, q0 + nq - 1);
          if (n_tile > 0)
            kernels::scores_from_panels(qf, D, nq, keys_t_.data() + (b * p.kv_heads + kvh) * D * Lkp, n_tile, D,
                                        w.score.data(), Lk);

          for (std::int64_t i = 0; i < nq; ++i) {
            const std::int64_t q = q0 + i;
            T* orow = io.o + (bh * Lq + q) * Dv;
            const std::int64_t n = visible_keys(p, q);
            if (n == 0) {
              for (std::int64_t c = 0; c < Dv; ++c) narrow(0.0f, orow + c);
              continue;
            }
            const float* score = w.score.data() + i * Lk;
            // Ties at the boundary go to the earlier key, so the kept set is well defined.
            const std::int64_t kept =
                kernels::select_top(score, n, std::min(k_, n), w.values.data(), order);

            float row_max = -std::numeric_limits<float>::infinity();
            for (std::int64_t j = 0; j < kept; ++j) row_max = std::max(row_max, score[order[j]]);
            const T* vbh = io.v + (b * p.kv_heads + kvh) * Lk * Dv;
            std::fill(acc, acc + Dv, 0.0f);
            float row_sum = 0.0f;
            for (std::int64_t j = 0; j < kept; ++j) {
              const float e = std::exp(score[order[j]] - row_max);
              row_sum += e;
              const T* vrow = vbh + static_cast<std::int64_t>(order[j]) * Dv;
#pragma omp simd
              for (std::int64_t c = 0; c < Dv; ++c) acc[c] += e * widen(vrow[c]);
            }
            const float inv = 1.0f / row_sum;
            for (std::int64_t c = 0; c < Dv; ++c) narrow(acc[c] * inv, orow + c);
          }
        }
      }
    }
  }

 private:
  Problem p_;
  std::int64_t k_;
  std::vector<float> keys_t_;  // [batch][kv_heads][⌈kv_len/32⌉][head_dim][32], refilled by every run
  std::vector<TopkScratch> scratch_;
};

class Topk final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "topk";
    m.family = Family::sparse_dynamic;
    m.summary =
        "per query, softmax over exactly its k highest-scoring allowed keys (all scores computed, then selected)";
    m.reference = "Gupta et al., Memory-efficient Transformers via Top-k Attention (2021)";
    m.params = {ParamSpec::integer("k", 64, 1, std::int64_t{1} << 30,
                                   "keys kept per query; k >= allowed keys is exact attention")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = kernels::fp32_bf16_full_or_causal(*this, "topk", p, params, d); !s) return s;
    if (p.kv_len > std::numeric_limits<std::int32_t>::max())
      return Support::no("topk indexes keys with 32-bit integers; kv_len must be below 2^31");
    return Support::yes();
  }

  // Per (batch, head): Σ_q [2·D·visible_q + 2·Dv·min(k, visible_q)] — every allowed key is scored (the
  // selection), only the kept ones are weighted into the output. Comparisons of the selection are not
  // counted as FLOPs.
  double flops(const Problem& p, const Params& params) const override {
    const std::int64_t k = params.integer("k");
    double scored = 0, kept = 0;
    for (std::int64_t q = 0; q < p.q_len; ++q) {
      const std::int64_t n = visible_keys(p, q);
      scored += static_cast<double>(n);
      kept += static_cast<double>(std::min(k, n));
    }
    const double bh = static_cast<double>(p.batch * p.heads);
    return bh * (2.0 * static_cast<double>(p.head_dim) * scored + 2.0 * static_cast<double>(p.value_dim) * kept);
  }
  // Every key is read for the scores; over all queries the kept keys cover V: the dense minimum.
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<TopkPlan>(p, params.integer("k"));
  }
};

ATTNBENCH_REGISTER_METHOD(Topk);

}  // namespace
}  // namespace attnbench
