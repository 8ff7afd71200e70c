// Query-dependent block selection shared by moba, quest and landmark_block: per query, score the key
// blocks, keep the best few (plus the query's own block), and attend exactly to the chosen keys.
//
// The three methods differ only in how a block is scored (q·mean key, or Quest's min/max upper bound)
// and in whether the query's own block counts towards the budget; everything else lives here once.
#pragma once
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "attnbench/method.hpp"
#include "attnbench/problem.hpp"
#include "attnbench/tensor.hpp"
#include "kernels/cpu/exact_common.hpp"

namespace attnbench::kernels {

inline float widen_element(float x) { return x; }
inline float widen_element(std::uint16_t x) { return bf16_to_float(x); }
inline void narrow_element(float x, float* dst) { *dst = x; }
inline void narrow_element(float x, std::uint16_t* dst) { *dst = float_to_bf16(x); }

// e^x for x <= 0, relative error about 2e-7 (2^f by the Cephes exp2f polynomial on [-0.5, 0.5]);
// x below −87 (including −inf) gives exactly 0. Branch-free, so `omp simd` loops vectorize it where
// std::exp would stay a scalar call.
inline float exp_nonpositive(float x) {
  const bool underflow = x < -87.0f;
  const float t = (underflow ? -87.0f : x) * 1.4426950408889634f;  // e^x = 2^t
  const float n = (t + 12582912.0f) - 12582912.0f;                 // round to nearest: 1.5·2^23 trick
  const float f = t - n;
  float poly = 1.535336188319500e-4f * f + 1.339887440266574e-3f;
  poly = poly * f + 9.618437357674640e-3f;
  poly = poly * f + 5.550332471162809e-2f;
  poly = poly * f + 2.402264791363012e-1f;
  poly = poly * f + 6.931472028550421e-1f;
  poly = poly * f + 1.0f;
  const std::int32_t bits = std::bit_cast<std::int32_t>(poly) + (static_cast<std::int32_t>(n) << 23);
  return underflow ? 0.0f : std::bit_cast<float>(bits);
}

struct BlockSelection {
  std::int64_t block = 64;         // keys per block
  std::int64_t topk = 8;           // blocks chosen by score
  bool own_in_budget = false;      // the own block counts towards topk (MoBA) or comes on top of it (Quest, Landmark)
  bool own_without_causal = true;  // without a causal mask, the block holding the query's position is forced too
  std::int64_t blocks(const Problem& p) const { return (p.kv_len + block - 1) / block; }
};

inline BlockSelection block_selection(std::int64_t block, std::int64_t topk, bool own_in_budget,
                                      bool own_without_causal) {
  BlockSelection s;
  s.block = block;
  s.topk = topk;
  s.own_in_budget = own_in_budget;
  s.own_without_causal = own_without_causal;
  return s;
}

// Which blocks query q may choose from. Positions are bottom-right aligned like the masks: query q sits
// at key position q + kv_len − q_len.
struct QueryBlocks {
  std::int64_t visible_end = 0;    // the mask allows keys [0, visible_end); 0: the row is all zeros
  std::int64_t own = -1;           // the block always attended (causally cut under a causal mask), −1: none
  std::int64_t candidate_end = 0;  // candidates are the blocks [0, candidate_end) other than `own`
  std::int64_t candidates = 0;     // how many there are
  std::int64_t budget = 0;         // how many of them are chosen, by score
};

inline QueryBlocks query_blocks(const Problem& p, const BlockSelection& s, std::int64_t q) {
  const std::int64_t pos = q + p.kv_len - p.q_len;
  QueryBlocks g;
  if (p.causal()) {
    if (pos < 0) return g;
    g.visible_end = std::min(pos + 1, p.kv_len);
    g.own = pos / s.block;
    g.candidate_end = g.own;  // only blocks wholly in the past compete; the own block is cut causally
    g.candidates = g.own;
  } else {
    g.visible_end = p.kv_len;
    g.own = s.own_without_causal && pos >= 0 && pos < p.kv_len ? pos / s.block : -1;
    g.candidate_end = s.blocks(p);
    g.candidates = g.candidate_end - (g.own >= 0 ? 1 : 0);
  }
  const std::int64_t budget = s.topk - (s.own_in_budget && g.own >= 0 ? 1 : 0);
  g.budget = std::clamp<std::int64_t>(budget, 0, g.candidates);
  return g;
}

// Σ over the queries of one (batch, head) of the keys attended and of the candidate blocks scored
// (scoring is skipped when every candidate is chosen anyway). Chosen blocks count `block` keys each,
// so a ragged last block is counted whole: the count is an upper bound by less than one block per query.
struct BlockSelectCounts {
  double attended_pairs = 0;
  double scored_blocks = 0;
};
inline BlockSelectCounts block_select_counts(const Problem& p, const BlockSelection& s) {
  BlockSelectCounts c;
  for (std::int64_t q = 0; q < p.q_len; ++q) {
    const QueryBlocks g = query_blocks(p, s, q);
    if (g.visible_end == 0) continue;
    std::int64_t own_keys = 0;
    if (g.own >= 0) own_keys = std::min(g.visible_end, (g.own + 1) * s.block) - g.own * s.block;
    c.attended_pairs += static_cast<double>(std::min(g.visible_end, own_keys + g.budget * s.block));
    if (g.budget < g.candidates) c.scored_blocks += static_cast<double>(g.candidates);
  }
  return c;
}

struct Kept {
  float score;
  std::int32_t index;
};

// The `kept` highest of score[0, n), ties going to the lower index, as ascending indices in `order` (K
// and V are then streamed forward); `heap` (kept entries) and `values` (n) are scratch. Used over keys by topk and over
// blocks by this family. Where kept is a small part of n (at most an eighth): one pass in index order
// over a heap of the kept candidates whose top is the worst of them — a later index displaces it only
// with a strictly higher score (on a tie the lower index wins), and a block of 16 scores none of which
// beats the worst is passed over by its vector maximum, so almost every score costs one vector compare.
// Otherwise (the heap would take many displacements): the kept-th largest score by selection over a
// copy of the scores, then one pass that takes every index above it and the lowest ones equal to it.
// Both give the same set. Returns min(kept, n).
inline std::int64_t select_top(const float* score, std::int64_t n, std::int64_t kept, Kept* heap, float* values,
                               std::int32_t* order) {
  if (kept >= n) {
    std::iota(order, order + n, 0);
    return n;
  }
  if (kept <= 0) return 0;
  if (kept * 8 > n) {
    std::copy(score, score + n, values);
    std::nth_element(values, values + (kept - 1), values + n, std::greater<float>());
    const float threshold = values[kept - 1];
    std::int64_t above = 0;
    for (std::int64_t j = 0; j < n; ++j) above += score[j] > threshold ? 1 : 0;
    std::int64_t ties = kept - above, m = 0;
    for (std::int64_t j = 0; j < n; ++j)
      if (score[j] > threshold || (score[j] == threshold && ties-- > 0)) order[m++] = static_cast<std::int32_t>(j);
    return m;
  }
  // better(a, b): a ranks above b; under it the heap's top is the worst candidate.
  const auto better = [](const Kept& a, const Kept& b) {
    return a.score > b.score || (a.score == b.score && a.index < b.index);
  };
  for (std::int64_t j = 0; j < kept; ++j) heap[j] = {score[j], static_cast<std::int32_t>(j)};
  std::make_heap(heap, heap + kept, better);
  float worst = heap[0].score;
  constexpr std::int64_t kBlock = 16;
  for (std::int64_t j = kept; j < n; ++j) {
    if (j % kBlock == 0 && j + kBlock <= n) {  // aligned blocks: skip those with nothing above the worst
      float top = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : top)
      for (std::int64_t i = j; i < j + kBlock; ++i) top = std::max(top, score[i]);
      if (!(top > worst)) {
        j += kBlock - 1;
        continue;
      }
    }
    if (score[j] > worst) {
      std::pop_heap(heap, heap + kept, better);
      heap[kept - 1] = {score[j], static_cast<std::int32_t>(j)};
      std::push_heap(heap, heap + kept, better);
      worst = heap[0].score;
    }
  }
  for (std::int64_t i = 0; i < kept; ++i) order[i] = heap[i].index;
  std::sort(order, order + kept);
  return kept;
}

// Per-thread scratch, sized once in plan() so that run() allocates nothing.
struct BlockSelectScratch {
  std::vector<float> query, block_score, key_score, acc, values;
  std::vector<Kept> heap;
  std::vector<std::int32_t> chosen;
  BlockSelectScratch(const Problem& p, const BlockSelection& s)
      : query(static_cast<std::size_t>(p.head_dim)),
        block_score(static_cast<std::size_t>(s.blocks(p))),
        key_score(static_cast<std::size_t>(s.block)),
        acc(static_cast<std::size_t>(p.value_dim)),
        values(static_cast<std::size_t>(s.blocks(p))),
        heap(static_cast<std::size_t>(s.blocks(p))),
        chosen(static_cast<std::size_t>(s.blocks(p) + 1)) {}
};

inline std::vector<BlockSelectScratch> make_block_select_scratch(const Problem& p, const BlockSelection& s) {
  return per_thread_scratch<BlockSelectScratch>(max_threads(), p, s);
}

// out[b, h, q] = softmax over the keys of the chosen blocks, exactly (online softmax over the blocks).
// score_block(b, kv_head, block, q) rates a block for the query q (already multiplied by the softmax
// scale, which is positive and so does not change the ranking); ties go to the lower block index.
template <class T, class ScoreBlock>
void block_select_forward(const Problem& p, const Inputs& in, Tensor& out, const BlockSelection& s,
                          std::vector<BlockSelectScratch>& scratch, const ScoreBlock& score_block) {
  const TypedIO<T> io(in, out);
  const T *qbase = io.q, *kbase = io.k, *vbase = io.v;
  T* obase = io.o;
  const std::int64_t B = p.batch, H = p.heads, Lq = p.q_len, Lk = p.kv_len, D = p.head_dim, Dv = p.value_dim;
  const float scale = static_cast<float>(p.scale);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

#pragma omp parallel num_threads(static_cast <int>(scratch.size()))
  {
    BlockSelectScratch& w = scratch[static_cast<std::size_t>(omp_get_thread_num())];
    float* qf = w.query.data();
    float* block_score = w.block_score.data();
    float* key_score = w.key_score.data();
    float* acc = w.acc.data();
    std::int32_t* cand = w.chosen.data();

#pragma omp for collapse(2) schedule(dynamic, 8)
    for (std::int64_t bh = 0; bh < B * H; ++bh) {
      for (std::int64_t q = 0; q < Lq; ++q) {
        const std::int64_t b = bh / H, h = bh % H, kvh = p.kv_head_of(h);
        T* orow = obase + (bh * Lq + q) * Dv;
        const QueryBlocks g = query_blocks(p, s, q);
        if (g.visible_end == 0) {
          for (std::int64_t c = 0; c < Dv; ++c) narrow_element(0.0f, orow + c);
          continue;
        }
        const T* qsrc = qbase + (bh * Lq + q) * D;
        for (std::int64_t d = 0; d < D; ++d) qf[d] = widen_element(qsrc[d]) * scale;

        // Selection: the best `budget` candidates by score (the own block, if among [0, candidate_end),
        // scored −inf so that it is never one of them), or all candidates; then the own block.
        std::int64_t n = 0;
        if (g.budget < g.candidates) {
          for (std::int64_t blk = 0; blk < g.candidate_end; ++blk)
            block_score[blk] = blk == g.own ? kNegInf : score_block(b, kvh, blk, qf);
          n = select_top(block_score, g.candidate_end, g.budget, w.heap.data(), w.values.data(), cand);
        } else {
          for (std::int64_t blk = 0; blk < g.candidate_end; ++blk)
            if (blk != g.own) cand[n++] = static_cast<std::int32_t>(blk);
        }
        if (g.own >= 0) {
          cand[n++] = static_cast<std::int32_t>(g.own);
          std::sort(cand, cand + n);  // keys in order: the reads stream forward through K and V
        }

        // Exact softmax over the chosen keys, one block at a time.
        const T* kbh = kbase + (b * p.kv_heads + kvh) * Lk * D;
        const T* vbh = vbase + (b * p.kv_heads + kvh) * Lk * Dv;
        float row_max = kNegInf, row_sum = 0.0f;
        std::fill(acc, acc + Dv, 0.0f);
        for (std::int64_t i = 0; i < n; ++i) {
          const std::int64_t k0 = cand[i] * s.block, k1 = std::min(k0 + s.block, g.visible_end);
          if (k1 <= k0) continue;
          float tile_max = kNegInf;
          for (std::int64_t k = k0; k < k1; ++k) {
            const T* krow = kbh + k * D;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (std::int64_t d = 0; d < D; ++d) dot += qf[d] * widen_element(krow[d]);
            key_score[k - k0] = dot;
            tile_max = std::max(tile_max, dot);
          }
          const float new_max = std::max(row_max, tile_max);
          const float alpha = std::exp(row_max - new_max);  // 0 on the first block (row_max = −inf)
          row_sum *= alpha;
          for (std::int64_t c = 0; c < Dv; ++c) acc[c] *= alpha;
          for (std::int64_t k = k0; k < k1; ++k) {
            const float e = std::exp(key_score[k - k0] - new_max);
            row_sum += e;
            const T* vrow = vbh + k * Dv;
#pragma omp simd
            for (std::int64_t c = 0; c < Dv; ++c) acc[c] += e * widen_element(vrow[c]);
          }
          row_max = new_max;
        }
        const float inv = row_sum > 0.0f ? 1.0f / row_sum : 0.0f;
        for (std::int64_t c = 0; c < Dv; ++c) narrow_element(acc[c] * inv, orow + c);
      }
    }
  }
}

// The mean key of every block, [batch][kv_heads][blocks][head_dim]: MoBA's gate and the stand-in for
// Landmark Attention's trained landmark token. Input-dependent, so computed inside run().
template <class T>
void block_mean_keys(const Problem& p, const Tensor& k, std::int64_t block, std::vector<float>& means) {
  const T* kbase = static_cast<const T*>(k.data());
  const std::int64_t Lk = p.kv_len, D = p.head_dim, nb = (Lk + block - 1) / block;
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t bkv = 0; bkv < p.batch * p.kv_heads; ++bkv)
    for (std::int64_t blk = 0; blk < nb; ++blk) {
      float* mean = means.data() + (bkv * nb + blk) * D;
      const std::int64_t k0 = blk * block, k1 = std::min(k0 + block, Lk);
      std::fill(mean, mean + D, 0.0f);
      for (std::int64_t j = k0; j < k1; ++j) {
        const T* krow = kbase + (bkv * Lk + j) * D;
#pragma omp simd
        for (std::int64_t d = 0; d < D; ++d) mean[d] += widen_element(krow[d]);
      }
      const float inv = 1.0f / static_cast<float>(k1 - k0);
      for (std::int64_t d = 0; d < D; ++d) mean[d] *= inv;
    }
}

inline float dot_product(const float* a, const float* b, std::int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (std::int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// keys_t[d·ld + j] = K[k0 + j][d] widened to fp32, for j < count: keys laid out so that score loops
// run along keys in vector lanes (no horizontal sums).
template <class T>
void transpose_keys(const T* keys, std::int64_t count, std::int64_t head_dim, float* keys_t, std::int64_t ld) {
  for (std::int64_t j = 0; j < count; ++j)
    for (std::int64_t d = 0; d < head_dim; ++d) keys_t[d * ld + j] = widen_element(keys[j * head_dim + d]);
}

// scores[r·lds + j] = Σ_d q[r·ldq + d]·keys_t[d·ldk + j] for r < rows, j < count: a register-blocked
// product of 4 query rows × 32 keys, the keys (transposed) along the vector lanes.
inline void scores_from_transposed_keys(const float* q, std::int64_t ldq, std::int64_t rows, const float* keys_t,
                                        std::int64_t ldk, std::int64_t count, std::int64_t head_dim, float* scores,
                                        std::int64_t lds) {
  constexpr std::int64_t R = 4, J = 32;
  for (std::int64_t r0 = 0; r0 < rows; r0 += R) {
    const std::int64_t nr = std::min(R, rows - r0);
    for (std::int64_t j0 = 0; j0 < count; j0 += J) {
      const std::int64_t nj = std::min(J, count - j0);
      float acc[R][J] = {};
      if (nr == R && nj == J) {
        for (std::int64_t d = 0; d < head_dim; ++d) {
          const float* krow = keys_t + d * ldk + j0;
#pragma GCC unroll 4
          for (std::int64_t r = 0; r < R; ++r) {
            const float qd = q[(r0 + r) * ldq + d];
#pragma omp simd
            for (std::int64_t j = 0; j < J; ++j) acc[r][j] += qd * krow[j];
          }
        }
      } else {
        for (std::int64_t d = 0; d < head_dim; ++d) {
          const float* krow = keys_t + d * ldk + j0;
          for (std::int64_t r = 0; r < nr; ++r) {
            const float qd = q[(r0 + r) * ldq + d];
            for (std::int64_t j = 0; j < nj; ++j) acc[r][j] += qd * krow[j];
          }
        }
      }
      for (std::int64_t r = 0; r < nr; ++r)
        for (std::int64_t j = 0; j < nj; ++j) scores[(r0 + r) * lds + j0 + j] = acc[r][j];
    }
  }
}

// Quest's page summary: per channel, the min and max over the page's keys.
template <class T>
void page_min_max(const T* keys, std::int64_t count, std::int64_t head_dim, float* page_min, float* page_max) {
  for (std::int64_t d = 0; d < head_dim; ++d) {
    page_min[d] = std::numeric_limits<float>::infinity();
    page_max[d] = -std::numeric_limits<float>::infinity();
  }
  for (std::int64_t j = 0; j < count; ++j)
    for (std::int64_t d = 0; d < head_dim; ++d) {
      const float x = widen_element(keys[j * head_dim + d]);
      page_min[d] = std::min(page_min[d], x);
      page_max[d] = std::max(page_max[d], x);
    }
}

// Quest's criticality: Σ_d max(q_d·min_d, q_d·max_d) ≥ q·k for every key k of the page, because each
// term bounds q_d·k_d for k_d in [min_d, max_d].
inline float quest_upper_bound(const float* q, const float* page_min, const float* page_max, std::int64_t head_dim) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (std::int64_t d = 0; d < head_dim; ++d) s += std::max(q[d] * page_min[d], q[d] * page_max[d]);
  return s;
}

// One method of the family, as a plan and a method over a Gate: how the method summarises the key
// blocks and rates one for a query. Each method supplies only its gate, its BlockSelection (from its
// parameters), info() and registration. A Gate provides
//   Gate(const Problem&, const BlockSelection&)  sizes its summaries, in plan()
//   template <class T> auto summarise(const Problem&, const BlockSelection&, const Tensor& k)
//       rebuilds the summaries from the keys and returns score_block(b, kv_head, block, q) for
//       block_select_forward; the summaries depend on the keys, so this is part of the timed cost
//   static constexpr double score_flops    per channel, per candidate block rated
//   static constexpr double summary_flops  per channel, per key summarised
template <class Gate>
class BlockSelectPlan final : public Plan {
 public:
  BlockSelectPlan(const Problem& p, const BlockSelection& s)
      : p_(p), s_(s), gate_(p, s), scratch_(make_block_select_scratch(p, s)) {}

  void run(const Inputs& in, Tensor& out) override {
    dispatch_fp32_or_bf16(p_.dtype, [&](auto element) {
      using T = decltype(element);
      block_select_forward<T>(p_, in, out, s_, scratch_, gate_.template summarise<T>(p_, s_, in.k));
    });
  }

 private:
  Problem p_;
  BlockSelection s_;
  Gate gate_;
  std::vector<BlockSelectScratch> scratch_;
};

template <class Gate>
class BlockSelectMethod : public Method {
 public:
  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    return fp32_bf16_full_or_causal(*this, info().name, p, params, d);
  }

  // Per (batch, head): Σ_q [2·(D + Dv)·attended_q + score_flops·D·scored_q] with attended_q the keys of
  // the chosen blocks (each counted as a whole block, capped by the keys the mask allows) and scored_q
  // the candidate blocks rated (0 when every candidate is chosen); plus summary_flops·D per key for the
  // block summaries.
  double flops(const Problem& p, const Params& params) const override {
    const BlockSelectCounts c = block_select_counts(p, selection(params));
    const double bh = static_cast<double>(p.batch * p.heads);
    const double D = static_cast<double>(p.head_dim), Dv = static_cast<double>(p.value_dim);
    return bh * (2.0 * (D + Dv) * c.attended_pairs + Gate::score_flops * D * c.scored_blocks) +
           Gate::summary_flops * static_cast<double>(p.batch * p.kv_heads * p.kv_len) * D;
  }
  // The summaries read every key and, over all queries, the chosen blocks cover V: the dense minimum.
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<BlockSelectPlan<Gate>>(p, selection(params));
  }

 protected:
  // The method's selection rule, from its parameters.
  virtual BlockSelection selection(const Params& params) const = 0;
};

// The gate of moba and landmark_block: a block is represented by its mean key (MoBA's gate; the stand-in
// for Landmark Attention's trained landmark token) and rated by q·mean, D products and adds per block;
// the means cost D adds per key.
class MeanKeyGate {
 public:
  static constexpr double score_flops = 2.0;
  static constexpr double summary_flops = 1.0;

  MeanKeyGate(const Problem& p, const BlockSelection& s)
      : means_(static_cast<std::size_t>(p.batch * p.kv_heads * s.blocks(p) * p.head_dim)) {}

  template <class T>
  auto summarise(const Problem& p, const BlockSelection& s, const Tensor& k) {
    block_mean_keys<T>(p, k, s.block, means_);
    const std::int64_t nb = s.blocks(p), D = p.head_dim, Hkv = p.kv_heads;
    const float* means = means_.data();
    return [=](std::int64_t b, std::int64_t kvh, std::int64_t blk, const float* q) {
      return dot_product(q, means + ((b * Hkv + kvh) * nb + blk) * D, D);
    };
  }

 private:
  std::vector<float> means_;  // [batch][kv_heads][blocks][head_dim]
};

}  // namespace attnbench::kernels
