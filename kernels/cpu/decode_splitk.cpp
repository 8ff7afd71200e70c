// Method "decode_splitk": split-K decoding attention (flash-decoding) — a few query tokens against a long
// KV cache, the keys split into chunks processed in parallel and merged by the log-sum-exp rule.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attnbench/method.hpp"
#include "kernels/cpu/decode_splitk_params.hpp"
#include "kernels/cpu/exact_common.hpp"

namespace attnbench {
namespace {

using kernels::narrow;
using kernels::widen;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr std::int64_t kSubBlock = 64;           // keys scored at a time inside a split
constexpr std::int64_t kMinAutoSplitKeys = 256;  // auto mode keeps splits at least this long

// splits = 0 picks enough splits to give every thread about two work items of (batch, kv head, split),
// without making a split shorter than kMinAutoSplitKeys keys.
std::int64_t resolve_splits(const Problem& p, std::int64_t splits, int threads) {
  if (splits > 0) return splits;
  const std::int64_t units = std::max<std::int64_t>(1, p.batch * p.kv_heads);
  const std::int64_t wanted = (2 * static_cast<std::int64_t>(threads) + units - 1) / units;
  const std::int64_t most = std::max<std::int64_t>(1, p.kv_len / kMinAutoSplitKeys);
  return std::clamp<std::int64_t>(wanted, 1, most);
}

struct SplitScratch {
  std::vector<float> query;               // [rows][head_dim], pre-scaled
  std::vector<float> scores;              // [rows][kSubBlock], then probabilities
  std::vector<std::int64_t> visible_end;  // [rows]: the row's query sees keys [0, visible_end)
  std::vector<float> split_weight;        // [splits], for the merge
  std::vector<float> merged;              // [value_dim], for the merge
  SplitScratch(const Problem& p, std::int64_t rows, std::int64_t splits)
      : query(static_cast<std::size_t>(rows * p.head_dim)),
        scores(static_cast<std::size_t>(rows * kSubBlock)),
        visible_end(static_cast<std::size_t>(rows)),
        split_weight(static_cast<std::size_t>(splits)),
        merged(static_cast<std::size_t>(p.value_dim)) {}
};

class DecodeSplitkPlan final : public kernels::Fp32OrBf16Plan<DecodeSplitkPlan> {
 public:
  DecodeSplitkPlan(const Problem& p, std::int64_t splits)
      : Fp32OrBf16Plan(p.dtype),
        p_(p),
        rows_(p.group_size() * p.q_len),
        splits_(resolve_splits(p, splits, omp_get_max_threads())),
        part_max_(static_cast<std::size_t>(p.batch * p.kv_heads * splits_ * rows_)),
        part_sum_(part_max_.size()),
        part_out_(part_max_.size() * static_cast<std::size_t>(p.value_dim)),
        scratch_(kernels::per_thread_scratch<SplitScratch>(kernels::max_threads(), p, rows_, splits_)) {}

  std::int64_t splits() const { return splits_; }

  // The kernel for stored element type T, called by run().
  template <class T>
  void forward(const kernels::TypedIO<T>& io) {
    const Problem& p = p_;
    const std::int64_t B = p.batch, H = p.heads, Hkv = p.kv_heads, G = p.group_size();
    const std::int64_t Lq = p.q_len, Lk = p.kv_len, D = p.head_dim, Dv = p.value_dim;
    const std::int64_t rows = rows_, S = splits_;
    const float scale = static_cast<float>(p.scale);

#pragma omp parallel num_threads(static_cast <int>(scratch_.size()))
    {
      SplitScratch& w = scratch_[static_cast<std::size_t>(omp_get_thread_num())];
      float* qf = w.query.data();
      float* st = w.scores.data();
      std::int64_t* vis = w.visible_end.data();

      // Phase 1: one work item per (batch, kv head, split). All G query heads of the group and all
      // q_len queries are rows of the item, so each key and value row is read once for all of them.
#pragma omp for collapse(3) schedule(dynamic, 1)
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t kvh = 0; kvh < Hkv; ++kvh)
          for (std::int64_t s = 0; s < S; ++s) {
            const std::int64_t s0 = s * Lk / S, s1 = (s + 1) * Lk / S;
            const std::int64_t slot = ((b * Hkv + kvh) * S + s) * rows;
            float* pmax = part_max_.data() + slot;
            float* psum = part_sum_.data() + slot;
            float* pout = part_out_.data() + slot * Dv;
            for (std::int64_t r = 0; r < rows; ++r) {
              const std::int64_t g = r / Lq, qi = r % Lq, h = kvh * G + g;
              const T* qsrc = io.q + ((b * H + h) * Lq + qi) * D;
              for (std::int64_t d = 0; d < D; ++d) qf[r * D + d] = widen(qsrc[d]) * scale;
              // Bottom-right causal alignment: query qi sits at key position qi + Lk − Lq.
              vis[r] = p.causal() ? std::clamp<std::int64_t>(qi + Lk - Lq + 1, 0, Lk) : Lk;
              pmax[r] = kNegInf;
              psum[r] = 0.0f;
            }
            std::fill(pout, pout + rows * Dv, 0.0f);

            const T* kbh = io.k + (b * Hkv + kvh) * Lk * D;
            const T* vbh = io.v + (b * Hkv + kvh) * Lk * Dv;
            for (std::int64_t j0 = s0; j0 < s1; j0 += kSubBlock) {
              const std::int64_t nj = std::min(kSubBlock, s1 - j0);
              for (std::int64_t j = 0; j < nj; ++j) {
                const T* krow = kbh + (j0 + j) * D;
                for (std::int64_t r = 0; r < rows; ++r) {
                  if (j0 + j >= vis[r]) {
                    st[r * kSubBlock + j] = kNegInf;
                    continue;
                  }
                  const float* qrow = qf + r * D;
                  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                  for (std::int64_t d = 0; d < D; ++d) dot += qrow[d] * widen(krow[d]);
                  st[r * kSubBlock + j] = dot;
                }
              }
              // Online softmax inside the split: running max and sum per row.
              for (std::int64_t r = 0; r < rows; ++r) {
                float* srow = st + r * kSubBlock;
                float tile_max = kNegInf;
                for (std::int64_t j = 0; j < nj; ++j) tile_max = std::max(tile_max, srow[j]);
                const float new_max = std::max(pmax[r], tile_max);
                if (new_max == kNegInf) {  // nothing visible yet: probabilities are all 0
                  std::fill(srow, srow + nj, 0.0f);
                  continue;
                }
                const float alpha = std::exp(pmax[r] - new_max);
                if (alpha != 1.0f) {
                  psum[r] *= alpha;
                  for (std::int64_t c = 0; c < Dv; ++c) pout[r * Dv + c] *= alpha;
                }
                float sum = 0.0f;
                for (std::int64_t j = 0; j < nj; ++j) {
                  srow[j] = std::exp(srow[j] - new_max);  // exp(−inf) = 0 for masked keys
                  sum += srow[j];
                }
                psum[r] += sum;
                pmax[r] = new_max;
              }
              for (std::int64_t j = 0; j < nj; ++j) {
                const T* vrow = vbh + (j0 + j) * Dv;
                for (std::int64_t r = 0; r < rows; ++r) {
                  const float pr = st[r * kSubBlock + j];
                  if (pr == 0.0f) continue;
                  float* orow = pout + r * Dv;
#pragma omp simd
                  for (std::int64_t c = 0; c < Dv; ++c) orow[c] += pr * widen(vrow[c]);
                }
              }
            }
          }

          // Phase 2: merge the splits of every query by the log-sum-exp rule:
          // o = Σ_s e^{m_s − M}·o_s / Σ_s e^{m_s − M}·l_s with M = max_s m_s.
#pragma omp for collapse(2) schedule(static)
      for (std::int64_t bh = 0; bh < B * H; ++bh)
        for (std::int64_t qi = 0; qi < Lq; ++qi) {
          const std::int64_t b = bh / H, h = bh % H, kvh = h / G, r = (h % G) * Lq + qi;
          T* odst = io.o + (bh * Lq + qi) * Dv;
          const std::int64_t base = (b * Hkv + kvh) * S * rows + r;
          float global_max = kNegInf;
          for (std::int64_t s = 0; s < S; ++s) global_max = std::max(global_max, part_max_[base + s * rows]);
          if (global_max == kNegInf) {  // no key allowed: zeros by convention
            for (std::int64_t c = 0; c < Dv; ++c) narrow(0.0f, odst + c);
            continue;
          }
          // The weights e^{m_s − M} once per query; a split the mask emptied has weight 0.
          float* weight = w.split_weight.data();
          float total = 0.0f;
          for (std::int64_t s = 0; s < S; ++s) {
            const float m = part_max_[base + s * rows];
            weight[s] = m == kNegInf ? 0.0f : std::exp(m - global_max);
            total += weight[s] * part_sum_[base + s * rows];
          }
          float* acc = w.merged.data();
          std::fill(acc, acc + Dv, 0.0f);
          for (std::int64_t s = 0; s < S; ++s) {
            if (weight[s] == 0.0f) continue;
            const float* part = part_out_.data() + (base + s * rows) * Dv;
            const float ws = weight[s];
#pragma omp simd
            for (std::int64_t c = 0; c < Dv; ++c) acc[c] += ws * part[c];
          }
          const float inv = 1.0f / total;
          for (std::int64_t c = 0; c < Dv; ++c) narrow(acc[c] * inv, odst + c);
        }
    }
  }

 private:
  Problem p_;
  std::int64_t rows_, splits_;
  std::vector<float> part_max_, part_sum_, part_out_;  // [batch][kv_heads][splits][rows](×value_dim)
  std::vector<SplitScratch> scratch_;
};

class DecodeSplitk final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "decode_splitk";
    m.family = Family::decode;
    m.summary =
        "decoding attention with the KV cache split into chunks, each giving (max, sum, partial output), merged by "
        "log-sum-exp";
    m.reference = "Dao et al., Flash-Decoding for long-context inference (2023); Sanovar et al., Lean Attention (2024)";
    m.params = {
        ParamSpec::integer("splits", 0, 0, std::int64_t{1} << 30,
                           "key chunks processed in parallel; 0 = auto from kv_len, batch·kv_heads and threads"),
        ParamSpec::integer("max_queries", 16, 1, 4096,
                           "largest q_len accepted: beyond it this is prefill, not decoding")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = kernels::fp32_bf16_full_or_causal(*this, "decode_splitk", p, params, d); !s) return s;
    return kernels::decode_splitk_params_support(p, params);
  }

  // attention_flops (every allowed pair scored and weighted once), plus the merge: 2·Dv per split per
  // query row to rescale and add its partial output.
  double flops(const Problem& p, const Params& params) const override {
    const double S = static_cast<double>(resolve_splits(p, params.integer("splits"), omp_get_max_threads()));
    return attention_flops(p) + 2.0 * static_cast<double>(p.batch * p.heads * p.q_len * p.value_dim) * S;
  }
  // Q, K, V read once, O written once, plus the fp32 partials (output, max, sum) written and read back.
  double bytes(const Problem& p, const Params& params) const override {
    const double S = static_cast<double>(resolve_splits(p, params.integer("splits"), omp_get_max_threads()));
    return attention_bytes(p) + 2.0 * 4.0 * static_cast<double>(p.batch * p.heads * p.q_len * (p.value_dim + 2)) * S;
  }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<DecodeSplitkPlan>(p, params.integer("splits"));
  }
};

ATTNBENCH_REGISTER_METHOD(DecodeSplitk);

}  // namespace
}  // namespace attnbench
