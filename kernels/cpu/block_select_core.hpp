// Query-dependent block selection shared by moba, quest and landmark_block: per query, score the key
// blocks, keep the best few (plus the query's own block), and attend exactly to the chosen keys.
//
// The three methods differ only in how a block is scored (q·mean key, or Quest's min/max upper bound)
// and in whether the query's own block counts towards the budget; everything else lives here once.
// The selection itself is select_top.hpp's, the gate's product score_products.hpp's.
#pragma once
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "attnbench/method.hpp"
#include "attnbench/problem.hpp"
#include "attnbench/tensor.hpp"
#include "kernels/cpu/exact_common.hpp"
#include "kernels/cpu/score_products.hpp"
#include "kernels/cpu/select_top.hpp"
#include "kernels/cpu/simd_tiles.hpp"

namespace attnbench::kernels {

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

// Quest's criticality of a page for query q is Σ_d max(q_d·min_d, q_d·max_d) ≥ q·k for every key k of
// the page (each term bounds q_d·k_d for k_d in [min_d, max_d]; min and max per channel over the page's
// keys). The term is q_d·max_d where q_d ≥ 0 and q_d·min_d where q_d < 0, so the bound is the product of
// the query's features [q⁺, q⁻] (2·D) with the page's summary [max; min]: one matrix product rates
// every page for a tile of queries.
inline void quest_features(const float* q, std::int64_t head_dim, float* features) {
  for (std::int64_t d = 0; d < head_dim; ++d) {
    features[d] = std::max(q[d], 0.0f);
    features[head_dim + d] = std::min(q[d], 0.0f);
  }
}
// row[d] = max and row[head_dim + d] = min over the page's `count` keys of channel d (key rows in
// order, channels in vector lanes).
template <class T>
void quest_page_summary(const T* keys, std::int64_t count, std::int64_t head_dim, float* row) {
  float* __restrict hi = row;
  float* __restrict lo = row + head_dim;
  std::fill(hi, hi + head_dim, -std::numeric_limits<float>::infinity());
  std::fill(lo, lo + head_dim, std::numeric_limits<float>::infinity());
  for (std::int64_t j = 0; j < count; ++j) {
    const T* key = keys + j * head_dim;
    for (std::int64_t d = 0; d < head_dim; ++d) {  // written as compares so that GCC uses vector max/min
      const float x = widen(key[d]);
      hi[d] = hi[d] > x ? hi[d] : x;
      lo[d] = lo[d] < x ? lo[d] : x;
    }
  }
}

// out[g·kLanes + lane] = Σ_d q[d]·tiles[g][d·kLanes + lane] for G key tiles at once (G independent
// accumulators keep the FMA pipes busy).
template <int G>
inline void key_tile_scores(const float* q, std::int64_t head_dim, const float* const* tiles, float* out) {
  constexpr std::int64_t L = simd::kLanes;
  simd::vfloat acc[G] = {};
  for (std::int64_t d = 0; d < head_dim; ++d) {
    const simd::vfloat qd = simd::splat(q[d]);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) acc[g] += qd * simd::load(tiles[g] + d * L);
  }
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) simd::store(out + g * L, acc[g]);
}

// The keys [k0, k1) a query attends to in one chosen block, and where their scores are: the score of key
// k is at score[base + k].
struct KeyRange {
  std::int64_t k0, k1, base;
  const float* values;  // the value row of key k0 (rows of the values' ld floats follow)
};

// out[c] = Σ over the ranges' keys k of p[base + k]·(value row of k)[c0 + c], c < Vecs·kLanes.
template <int Vecs>
inline void range_values(const KeyRange* ranges, std::int64_t n_ranges, const float* p, std::int64_t c0,
                         std::int64_t ldv, float* out) {
  constexpr std::int64_t L = simd::kLanes;
  simd::vfloat acc[Vecs] = {};
  for (std::int64_t r = 0; r < n_ranges; ++r) {
    const KeyRange& kr = ranges[r];
    for (std::int64_t k = kr.k0; k < kr.k1; ++k) {
      const simd::vfloat pk = simd::splat(p[kr.base + k]);
      const float* vrow = kr.values + (k - kr.k0) * ldv + c0;
#pragma GCC unroll 4
      for (int v = 0; v < Vecs; ++v) acc[v] += pk * simd::load(vrow + v * L);
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < Vecs; ++v) simd::store(out + v * L, acc[v]);
}

constexpr std::int64_t kSelectQueryTile = 16;  // queries whose candidate blocks are rated together

// How the attention part is cut so that K and V come from the core's own cache: keys in chunks whose
// key tiles and value rows take about half the L2 (chunk_keys), and queries in batches (batch_queries)
// that each read every chunk once, instead of every query reading its chosen keys from wherever they
// are (a query of Quest at L 8K reads 0.5 MB of K and V; a head's K and V are 4 MB).
struct BlockSelectTiling {
  std::int64_t chunk_keys = 0;
  std::int64_t batch_queries = 0;
  std::int64_t max_blocks = 0;  // blocks a query attends to, at most
  // Whether run() first stores all of K as key tiles (and widens V where needed), which pays where
  // several batches of queries attend to at least as many keys as there are (prefill); otherwise
  // (decoding: a few queries against a long cache) each thread builds, per chunk, only the tiles its
  // queries attend to, so K is read once, for the summaries, plus the chosen keys.
  bool tile_all_keys = true;
};

inline std::int64_t l2_cache_bytes() {
  const long bytes = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
  return bytes > 0 ? static_cast<std::int64_t>(bytes) : std::int64_t{1} << 20;
}

inline BlockSelectTiling block_select_tiling(const Problem& p, const BlockSelection& s, std::int64_t value_ld) {
  constexpr std::int64_t L = simd::kLanes;
  BlockSelectTiling t;
  const std::int64_t per_key = (p.head_dim + value_ld) * static_cast<std::int64_t>(sizeof(float));
  t.chunk_keys = std::max(L, l2_cache_bytes() / 2 / per_key / L * L);
  if (s.block < t.chunk_keys) t.chunk_keys = t.chunk_keys / s.block * s.block;  // whole blocks per chunk
  t.max_blocks = std::min(s.topk + 1, s.blocks(p));
  // The batch's chosen-block lists take at most 4 MB; 16 to 256 queries.
  const std::int64_t by_lists = (std::int64_t{4} << 20) / (t.max_blocks * 4) / kSelectQueryTile * kSelectQueryTile;
  t.batch_queries = std::clamp<std::int64_t>(by_lists, kSelectQueryTile, 256);
  // One batch builds each tile it needs at most once, so tiling all of K only pays with several batches
  // that together attend to at least as many keys as there are.
  const std::int64_t keys_per_query = std::min(p.kv_len, t.max_blocks * s.block);
  t.tile_all_keys = p.q_len > t.batch_queries && p.q_len * keys_per_query >= p.kv_len;
  return t;
}

// Per-thread scratch, sized once in plan() so that run() allocates nothing.
struct BlockSelectScratch {
  std::vector<float> query, features, block_score, values, key_score, chunk_out, acc, row_max, row_sum;
  std::vector<float> chunk_keys, chunk_values;  // the chunk's key tiles and widened value rows, when built per chunk
  std::vector<std::uint8_t> built;              // which of them are built
  std::vector<std::int32_t> chosen, n_chosen, cursor;
  std::vector<const float*> tiles;
  std::vector<KeyRange> ranges;
  BlockSelectScratch(const Problem& p, const BlockSelection& s, std::int64_t features_per_query,
                     std::int64_t value_ld, bool values_in_place, const BlockSelectTiling& t) {
    const std::int64_t nb = s.blocks(p), R = kSelectQueryTile, L = simd::kLanes, Q = t.batch_queries;
    // In one chunk a query attends to at most max_blocks ranges of at most min(block, chunk) keys each,
    // each over at most ⌈keys/L⌉ + 1 key tiles.
    const std::int64_t max_tiles = t.max_blocks * ((std::min(s.block, t.chunk_keys) + L - 1) / L + 1);
    query.resize(static_cast<std::size_t>(Q * p.head_dim));
    features.resize(static_cast<std::size_t>(R * features_per_query));
    block_score.resize(static_cast<std::size_t>(R * nb));
    values.resize(static_cast<std::size_t>(nb));
    key_score.resize(static_cast<std::size_t>(max_tiles * L));
    chunk_out.resize(static_cast<std::size_t>(value_ld));
    acc.resize(static_cast<std::size_t>(Q * value_ld));
    row_max.resize(static_cast<std::size_t>(Q));
    row_sum.resize(static_cast<std::size_t>(Q));
    chosen.resize(static_cast<std::size_t>(Q * t.max_blocks));
    n_chosen.resize(static_cast<std::size_t>(Q));
    cursor.resize(static_cast<std::size_t>(Q));
    tiles.resize(static_cast<std::size_t>(max_tiles));
    ranges.resize(static_cast<std::size_t>(t.max_blocks));
    if (!t.tile_all_keys) {
      const std::int64_t chunk_tiles = t.chunk_keys / L + 2;  // a chunk need not start on a tile
      chunk_keys.resize(static_cast<std::size_t>(chunk_tiles * p.head_dim * L));
      if (!values_in_place) chunk_values.resize(static_cast<std::size_t>(chunk_tiles * L * value_ld));
      built.resize(static_cast<std::size_t>(chunk_tiles));
    }
  }
};

// What block_select_forward reads besides Q: keys in tiles of kLanes keys, [d][lane] (panel_keys: a
// query's scores against a tile are head_dim vector FMAs, no horizontal sums), values as fp32 rows of `ld`
// floats (the input itself when it is fp32 with whole vectors per row, else a widened, padded copy),
// and the gate's block summaries transposed in panels of kScoreCols blocks, with the query
// features they are multiplied by.
struct BlockSelectInputs {
  const float* key_tiles;   // [batch·kv_heads][⌈kv_len/kLanes⌉][head_dim][kLanes]; null: built per chunk
  const float* values;      // [batch·kv_heads][kv_len][ld]; null: widened per chunk
  std::int64_t ld;
  const float* summary_t;   // [batch·kv_heads][⌈blocks/kScoreCols⌉][features][kScoreCols] (scores_from_panels)
  std::int64_t features;    // per query
};

// One query's part of the attention in one chunk of keys: the scores of the keys in `ranges` (n_tiles
// key tiles in `tiles`, lanes outside a range −inf), their base-2 softmax with the chunk's own maximum,
// and the weighted value rows (KeyRange::values) into `out` (ld floats). Returns the chunk's maximum
// and sum.
inline std::pair<float, float> attend_ranges(const float* qf, std::int64_t D, const float* const* tiles,
                                             std::int64_t n_tiles, const KeyRange* ranges, std::int64_t n_ranges,
                                             std::int64_t ld, float* key_score, float* out) {
  constexpr std::int64_t L = simd::kLanes, kVecs = 4;
  std::int64_t t = 0;
  for (; t + 8 <= n_tiles; t += 8) key_tile_scores<8>(qf, D, tiles + t, key_score + t * L);
  for (; t + 4 <= n_tiles; t += 4) key_tile_scores<4>(qf, D, tiles + t, key_score + t * L);
  for (; t < n_tiles; ++t) key_tile_scores<1>(qf, D, tiles + t, key_score + t * L);
  for (std::int64_t r = 0; r < n_ranges; ++r) {
    const KeyRange& kr = ranges[r];
    const std::int64_t first = kr.base + kr.k0 / L * L, last = kr.base + (kr.k1 + L - 1) / L * L;
    for (std::int64_t j = first; j < kr.base + kr.k0; ++j) key_score[j] = simd::kNegInf;
    for (std::int64_t j = kr.base + kr.k1; j < last; ++j) key_score[j] = simd::kNegInf;
  }
  simd::vfloat vmax = simd::splat(simd::kNegInf);
  for (std::int64_t j = 0; j < n_tiles * L; j += L) vmax = simd::vmax(vmax, simd::load(key_score + j));
  float chunk_max = simd::kNegInf;
  for (std::int64_t lane = 0; lane < L; ++lane) chunk_max = std::max(chunk_max, vmax[lane]);
  const simd::vfloat m = simd::splat(chunk_max);
  simd::vfloat vsum{};
  for (std::int64_t j = 0; j < n_tiles * L; j += L) {
    const simd::vfloat e = simd::exp2_nonpositive(simd::load(key_score + j) - m);
    simd::store(key_score + j, e);
    vsum += e;
  }
  float chunk_sum = 0.0f;
  for (std::int64_t lane = 0; lane < L; ++lane) chunk_sum += vsum[lane];
  for (std::int64_t c0 = 0; c0 < ld; c0 += kVecs * L) {
    switch (std::min(kVecs, (ld - c0) / L)) {
      case 4:
        range_values<4>(ranges, n_ranges, key_score, c0, ld, out + c0);
        break;
      case 3:
        range_values<3>(ranges, n_ranges, key_score, c0, ld, out + c0);
        break;
      case 2:
        range_values<2>(ranges, n_ranges, key_score, c0, ld, out + c0);
        break;
      default:
        range_values<1>(ranges, n_ranges, key_score, c0, ld, out + c0);
        break;
    }
  }
  return {chunk_max, chunk_sum};
}

// out[b, h, q] = softmax over the keys of the chosen blocks, exactly. Work goes in batches of queries
// of one head (tiling.batch_queries). Selection: queries in tiles of kSelectQueryTile, whose ratings
// of every candidate block are one product of their features with the summaries (the rating of block j
// for query q is features(q)·summary_t[·][j], in base-2 units, which preserves the order); per query
// the best `budget` candidates (the own block rated −inf so that it is never one of them) plus the own
// block, in order. Attention: the keys in chunks that stay in the core's L2 (tiling.chunk_keys); in each
// chunk every query of the batch scores its chosen keys there against the key tiles, takes their
// softmax with the chunk's maximum and weights their value rows in registers, merged into its running
// maximum, sum and output (one rescale per chunk). query_features(q, f) fills a query's features from
// its scaled query.
template <class T, class QueryFeatures>
void block_select_forward(const Problem& p, const Inputs& in, Tensor& out, const BlockSelection& s,
                          const BlockSelectTiling& tiling, const BlockSelectInputs& x,
                          std::vector<BlockSelectScratch>& scratch, const QueryFeatures& query_features) {
  const TypedIO<T> io(in, out);
  constexpr std::int64_t L = simd::kLanes, R = kSelectQueryTile;
  const std::int64_t H = p.heads, Lq = p.q_len, Lk = p.kv_len, D = p.head_dim, Dv = p.value_dim, ld = x.ld;
  const std::int64_t nb = s.blocks(p), nbp = simd::round_up(nb, kScoreCols), F = x.features;
  const std::int64_t key_tiles = (Lk + L - 1) / L;
  const std::int64_t QB = tiling.batch_queries, MB = tiling.max_blocks, C = tiling.chunk_keys;
  const float qscale = static_cast<float>(p.scale) * simd::kLog2e;  // scores in base-2 units
  const std::int64_t batches = (Lq + QB - 1) / QB;

#pragma omp parallel num_threads(static_cast <int>(scratch.size()))
  {
    BlockSelectScratch& w = scratch[static_cast<std::size_t>(omp_get_thread_num())];

#pragma omp for collapse(2) schedule(dynamic, 1)
    for (std::int64_t bh = 0; bh < p.batch * H; ++bh)
      for (std::int64_t qb = 0; qb < batches; ++qb) {
        const std::int64_t b = bh / H, kvh = p.kv_head_of(bh % H), bkv = b * p.kv_heads + kvh;
        const std::int64_t qb0 = qb * QB, nqb = std::min(QB, Lq - qb0);
        std::int64_t visible = 0;  // keys any query of the batch sees

        // Selection, a tile of queries at a time.
        for (std::int64_t q0 = qb0; q0 < qb0 + nqb; q0 += R) {
          const std::int64_t nq = std::min(R, qb0 + nqb - q0);
          QueryBlocks g[R];
          std::int64_t rated = 0;  // candidates rated for the tile: those of the queries that choose among them
          for (std::int64_t i = 0; i < nq; ++i) {
            g[i] = query_blocks(p, s, q0 + i);
            const T* qsrc = io.q + (bh * Lq + q0 + i) * D;
            float* qf = w.query.data() + (q0 - qb0 + i) * D;
            for (std::int64_t d = 0; d < D; ++d) qf[d] = widen(qsrc[d]) * qscale;
            query_features(qf, w.features.data() + i * F);
            if (g[i].visible_end > 0 && g[i].budget > 0 && g[i].budget < g[i].candidates)
              rated = std::max(rated, g[i].candidate_end);
            visible = std::max(visible, g[i].visible_end);
          }
          if (rated > 0)
            scores_from_panels(w.features.data(), F, nq, x.summary_t + bkv * F * nbp, rated, F, w.block_score.data(),
                               nb);
          for (std::int64_t i = 0; i < nq; ++i) {
            const QueryBlocks& gi = g[i];
            const std::int64_t qi = q0 - qb0 + i;
            std::int32_t* cand = w.chosen.data() + qi * MB;
            std::int64_t n = 0;
            if (gi.visible_end > 0) {
              if (gi.budget < gi.candidates) {
                float* rating = w.block_score.data() + i * nb;
                if (gi.own >= 0 && gi.own < gi.candidate_end) rating[gi.own] = simd::kNegInf;
                n = select_top(rating, gi.candidate_end, gi.budget, w.values.data(), cand);
              } else {
                for (std::int64_t blk = 0; blk < gi.candidate_end; ++blk)
                  if (blk != gi.own) cand[n++] = static_cast<std::int32_t>(blk);
              }
              if (gi.own >= 0) {
                cand[n++] = static_cast<std::int32_t>(gi.own);
                std::sort(cand, cand + n);  // blocks in order: chunks take them from a cursor
              }
            }
            w.n_chosen[static_cast<std::size_t>(qi)] = static_cast<std::int32_t>(n);
            w.cursor[static_cast<std::size_t>(qi)] = 0;
            w.row_max[static_cast<std::size_t>(qi)] = simd::kNegInf;
            w.row_sum[static_cast<std::size_t>(qi)] = 0.0f;
            std::fill(w.acc.data() + qi * ld, w.acc.data() + (qi + 1) * ld, 0.0f);
          }
        }

        // Attention, a chunk of keys at a time.
        const float* kt = x.key_tiles ? x.key_tiles + bkv * key_tiles * D * L : nullptr;
        const float* vbh = x.values ? x.values + bkv * Lk * ld : nullptr;
        const T* kbh = io.k + bkv * Lk * D;
        const T* vsrc = io.v + bkv * Lk * Dv;
        for (std::int64_t c0 = 0; c0 < visible; c0 += C) {
          const std::int64_t c1 = std::min(c0 + C, Lk), t_first = c0 / L;
          if (!kt) std::fill(w.built.begin(), w.built.end(), std::uint8_t{0});
          // Key tile t (and its value rows, where they are widened) of this chunk, built on first use.
          const auto tile = [&](std::int64_t t) -> const float* {
            if (kt) return kt + t * D * L;
            const std::int64_t slot = t - t_first;
            float* dst = w.chunk_keys.data() + slot * D * L;
            if (!w.built[static_cast<std::size_t>(slot)]) {
              const std::int64_t count = std::min(L, Lk - t * L);
              panel_keys(kbh + t * L * D, count, D, L, dst);
              if (!vbh) {
                for (std::int64_t j = 0; j < count; ++j) {
                  float* row = w.chunk_values.data() + (slot * L + j) * ld;
                  for (std::int64_t c = 0; c < Dv; ++c) row[c] = widen(vsrc[(t * L + j) * Dv + c]);
                  std::fill(row + Dv, row + ld, 0.0f);
                }
              }
              w.built[static_cast<std::size_t>(slot)] = 1;
            }
            return dst;
          };
          const auto value_row = [&](std::int64_t k) -> const float* {
            return vbh ? vbh + k * ld : w.chunk_values.data() + (k - t_first * L) * ld;
          };
          for (std::int64_t qi = 0; qi < nqb; ++qi) {
            const std::int32_t* cand = w.chosen.data() + qi * MB;
            const std::int64_t n = w.n_chosen[static_cast<std::size_t>(qi)];
            std::int32_t& at = w.cursor[static_cast<std::size_t>(qi)];
            const std::int64_t visible_end = query_blocks(p, s, qb0 + qi).visible_end;
            std::int64_t n_ranges = 0, n_tiles = 0;
            for (; at < n; ++at) {
              const std::int64_t k0 = std::max(cand[at] * s.block, c0);
              const std::int64_t block_end = std::min((cand[at] + 1) * s.block, visible_end);
              if (k0 >= c1) break;  // from the next chunk on
              const std::int64_t k1 = std::min(block_end, c1);
              if (k1 > k0) {
                const std::int64_t t0 = k0 / L, t1 = (k1 + L - 1) / L;
                w.ranges[static_cast<std::size_t>(n_ranges++)] = KeyRange{k0, k1, (n_tiles - t0) * L, nullptr};
                for (std::int64_t t = t0; t < t1; ++t) w.tiles[static_cast<std::size_t>(n_tiles++)] = tile(t);
                w.ranges[static_cast<std::size_t>(n_ranges - 1)].values = value_row(k0);
              }
              if (block_end > c1) break;  // the block goes on in the next chunk
            }
            if (n_ranges == 0) continue;
            const auto [chunk_max, chunk_sum] =
                attend_ranges(w.query.data() + qi * D, D, w.tiles.data(), n_tiles, w.ranges.data(), n_ranges, ld,
                              w.key_score.data(), w.chunk_out.data());
            float& m = w.row_max[static_cast<std::size_t>(qi)];
            float& l = w.row_sum[static_cast<std::size_t>(qi)];
            const float m_new = std::max(m, chunk_max);
            const float a_old = m == simd::kNegInf ? 0.0f : std::exp2(m - m_new);
            const float a_chunk = std::exp2(chunk_max - m_new);
            l = l * a_old + chunk_sum * a_chunk;
            m = m_new;
            float* acc = w.acc.data() + qi * ld;
            const float* co = w.chunk_out.data();
#pragma omp simd
            for (std::int64_t c = 0; c < ld; ++c) acc[c] = acc[c] * a_old + co[c] * a_chunk;
          }
        }

        for (std::int64_t qi = 0; qi < nqb; ++qi) {
          T* orow = io.o + (bh * Lq + qb0 + qi) * Dv;
          const float l = w.row_sum[static_cast<std::size_t>(qi)];
          const float inv = l > 0.0f ? 1.0f / l : 0.0f;
          const float* acc = w.acc.data() + qi * ld;
          for (std::int64_t c = 0; c < Dv; ++c) narrow(acc[c] * inv, orow + c);
        }
      }
  }
}

// One method of the family, as a plan and a method over a Gate: how the method summarises the key
// blocks and rates one for a query. Each method supplies only its gate, its BlockSelection (from its
// parameters), info() and registration. A Gate provides
//   static std::int64_t features(const Problem&)       features per query
//   static void query_features(const float* q, std::int64_t head_dim, float* f)
//       a query's features from its (scaled) query vector
//   template <class T> static void summarise(const T* keys, std::int64_t count, std::int64_t head_dim,
//                                            float* row)
//       one block's summary from its keys, row[f] for every feature f; the rating of the block is
//       Σ_f features[f]·row[f]. The summaries depend on the keys, so they are rebuilt (and timed) in
//       run(), 16 blocks at a time and then transposed into panels of kScoreCols blocks
//   static constexpr double score_flops    per channel, per candidate block rated
//   static constexpr double summary_flops  per channel, per key summarised
template <class Gate>
class BlockSelectPlan final : public Plan {
 public:
  BlockSelectPlan(const Problem& p, const BlockSelection& s)
      : BlockSelectPlan(p, s, block_select_tiling(p, s, simd::round_up(p.value_dim, simd::kLanes))) {}
  // With a given tiling (tests cut small problems into several chunks and batches with it).
  BlockSelectPlan(const Problem& p, const BlockSelection& s, const BlockSelectTiling& tiling)
      : p_(p),
        s_(s),
        values_in_place_(p.dtype == Dtype::f32 && p.value_dim % simd::kLanes == 0),
        ld_(simd::round_up(p.value_dim, simd::kLanes)),
        key_tiles_(tiling.tile_all_keys ? static_cast<std::size_t>(p.batch * p.kv_heads *
                                                                   simd::round_up(p.kv_len, simd::kLanes) * p.head_dim)
                                        : 0),
        values_(values_in_place_ || !tiling.tile_all_keys ? 0
                                                          : static_cast<std::size_t>(p.batch * p.kv_heads * p.kv_len * ld_)),
        summary_t_(static_cast<std::size_t>(p.batch * p.kv_heads * Gate::features(p) *
                                            simd::round_up(s.blocks(p), kScoreCols))),
        summary_rows_(static_cast<std::size_t>(max_threads() * kSummaryGroup * Gate::features(p))),
        tiling_(tiling),
        scratch_(per_thread_scratch<BlockSelectScratch>(max_threads(), p, s, Gate::features(p), ld_, values_in_place_,
                                                        tiling_)) {}

  void run(const Inputs& in, Tensor& out) override {
    dispatch_fp32_or_bf16(p_.dtype, [&](auto element) {
      using T = decltype(element);
      prepare<T>(in);
      const float* values = values_in_place_            ? static_cast<const float*>(in.v.data())
                            : tiling_.tile_all_keys ? values_.data()
                                                    : nullptr;
      const BlockSelectInputs x{tiling_.tile_all_keys ? key_tiles_.data() : nullptr, values, ld_, summary_t_.data(),
                                Gate::features(p_)};
      block_select_forward<T>(p_, in, out, s_, tiling_, x, scratch_,
                              [D = p_.head_dim](const float* q, float* f) { Gate::query_features(q, D, f); });
    });
  }

 private:
  // The key tiles, the widened values where needed and the block summaries, from this run's K and V.
  template <class T>
  void prepare(const Inputs& in) {
    const Problem& p = p_;
    const T* k = static_cast<const T*>(in.k.data());
    const T* v = static_cast<const T*>(in.v.data());
    const std::int64_t Lk = p.kv_len, D = p.head_dim, Dv = p.value_dim, L = simd::kLanes;
    const std::int64_t nb = s_.blocks(p), nbp = simd::round_up(nb, kScoreCols), F = Gate::features(p);
    const std::int64_t BKV = p.batch * p.kv_heads;
    const std::int64_t tiles = (Lk + L - 1) / L;
    // Summaries of 16 blocks as rows, then into their panel (16 floats per feature).
    constexpr std::int64_t G = kSummaryGroup;
    static_assert(kScoreCols % G == 0);
    const std::int64_t groups = (nb + G - 1) / G;
#pragma omp parallel for collapse(2) schedule(static) num_threads(static_cast <int>(scratch_.size()))
    for (std::int64_t bkv = 0; bkv < BKV; ++bkv)
      for (std::int64_t grp = 0; grp < groups; ++grp) {
        float* rows = summary_rows_.data() + omp_get_thread_num() * G * F;
        const std::int64_t blk0 = grp * G, n = std::min(G, nb - blk0);
        for (std::int64_t i = 0; i < n; ++i) {
          const std::int64_t k0 = (blk0 + i) * s_.block, count = std::min(s_.block, Lk - k0);
          Gate::summarise(k + (bkv * Lk + k0) * D, count, D, rows + i * F);
        }
        float* dst = summary_t_.data() + bkv * F * nbp + (blk0 / kScoreCols * F) * kScoreCols + blk0 % kScoreCols;
        for (std::int64_t f = 0; f < F; ++f)
          for (std::int64_t i = 0; i < n; ++i) dst[f * kScoreCols + i] = rows[i * F + f];
      }
    if (!tiling_.tile_all_keys) return;  // built per chunk, where attended
#pragma omp parallel for schedule(static)
    for (std::int64_t bkv = 0; bkv < BKV; ++bkv)
      panel_keys(k + bkv * Lk * D, Lk, D, L, key_tiles_.data() + bkv * tiles * D * L);
    if (!values_in_place_) {
#pragma omp parallel for collapse(2) schedule(static)
      for (std::int64_t bkv = 0; bkv < BKV; ++bkv)
        for (std::int64_t j = 0; j < Lk; ++j) {
          float* dst = values_.data() + (bkv * Lk + j) * ld_;
          const T* src = v + (bkv * Lk + j) * Dv;
          for (std::int64_t c = 0; c < Dv; ++c) dst[c] = widen(src[c]);
          std::fill(dst + Dv, dst + ld_, 0.0f);
        }
    }
  }

  Problem p_;
  BlockSelection s_;
  bool values_in_place_;
  std::int64_t ld_;
  static constexpr std::int64_t kSummaryGroup = 16;
  std::vector<float> key_tiles_, values_, summary_t_;
  std::vector<float> summary_rows_;  // per thread, kSummaryGroup summaries as rows
  BlockSelectTiling tiling_;
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
struct MeanKeyGate {
  static constexpr double score_flops = 2.0;
  static constexpr double summary_flops = 1.0;
  static std::int64_t features(const Problem& p) { return p.head_dim; }
  static void query_features(const float* q, std::int64_t head_dim, float* f) { std::copy(q, q + head_dim, f); }
  template <class T>
  static void summarise(const T* keys, std::int64_t count, std::int64_t head_dim, float* row) {
    std::fill(row, row + head_dim, 0.0f);
    for (std::int64_t j = 0; j < count; ++j) {
      const T* key = keys + j * head_dim;
#pragma omp simd
      for (std::int64_t d = 0; d < head_dim; ++d) row[d] += widen(key[d]);
    }
    const float inv = 1.0f / static_cast<float>(count);
    for (std::int64_t d = 0; d < head_dim; ++d) row[d] *= inv;
  }
};

// Quest's gate (Tang et al. 2024): per page and channel the min and max key, 2·D comparisons per key;
// a page is rated by the bound, two products, a max and an add per channel (computed as the product of
// the query's features [q⁺, q⁻] with the page's [max; min], which gives the same terms:
// quest_features). Quest keeps the summaries with the KV cache; here the cache arrives with the call,
// so they are rebuilt (and timed) in run().
struct QuestGate {
  static constexpr double score_flops = 4.0;
  static constexpr double summary_flops = 2.0;
  static std::int64_t features(const Problem& p) { return 2 * p.head_dim; }
  static void query_features(const float* q, std::int64_t head_dim, float* f) { quest_features(q, head_dim, f); }
  template <class T>
  static void summarise(const T* keys, std::int64_t count, std::int64_t head_dim, float* row) {
    quest_page_summary(keys, count, head_dim, row);
  }
};

}  // namespace attnbench::kernels
