// Score products of the CPU kernels that score many keys per query without flash's tiles (topk, memeff,
// the block-selection gates): keys (or block summaries) transposed so that keys run along the vector
// lanes, and a register-blocked product of a few query rows with them.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/exact_common.hpp"
#include "kernels/cpu/simd_tiles.hpp"

namespace attnbench::kernels {

// keys_t[d·ld + j] = K[k0 + j][d] widened to fp32, for j < count: keys laid out so that score loops
// run along keys in vector lanes (no horizontal sums).
template <class T>
void transpose_keys(const T* keys, std::int64_t count, std::int64_t head_dim, float* keys_t, std::int64_t ld) {
  for (std::int64_t j = 0; j < count; ++j)
    for (std::int64_t d = 0; d < head_dim; ++d) keys_t[d * ld + j] = widen(keys[j * head_dim + d]);
}

constexpr std::int64_t kScoreRows = 4, kScoreCols = 32;  // the register block of the score products

// scores[r·lds + j] = Σ_d q[r·ldq + d]·column(d, j0)[j − j0] for r < rows, j < count, where
// column(d, j0) points at the kScoreCols keys j0, j0 + 1, … of channel d: a register-blocked product of
// 4 query rows × 32 keys, the keys along the vector lanes.
template <class Column>
inline void scores_register_blocked(const float* q, std::int64_t ldq, std::int64_t rows, const Column& column,
                                    std::int64_t count, std::int64_t head_dim, float* scores, std::int64_t lds) {
  constexpr std::int64_t R = kScoreRows, J = kScoreCols;
  // Keys outer: each block of keys is read once for all the rows (which stay in L1).
  for (std::int64_t j0 = 0; j0 < count; j0 += J) {
    const std::int64_t nj = std::min(J, count - j0);
    for (std::int64_t r0 = 0; r0 < rows; r0 += R) {
      const std::int64_t nr = std::min(R, rows - r0);
      if (nr == R && nj == J) {  // the whole block: accumulators in vector registers, vector stores
        constexpr std::int64_t V = J / simd::kLanes;
        simd::vfloat vacc[R][V] = {};
        for (std::int64_t d = 0; d < head_dim; ++d) {
          const float* krow = column(d, j0);
          simd::vfloat k[V];
#pragma GCC unroll 4
          for (std::int64_t v = 0; v < V; ++v) k[v] = simd::pin(simd::load(krow + v * simd::kLanes));
#pragma GCC unroll 4
          for (std::int64_t r = 0; r < R; ++r) {
            const simd::vfloat qd = simd::splat(q[(r0 + r) * ldq + d]);
#pragma GCC unroll 4
            for (std::int64_t v = 0; v < V; ++v) vacc[r][v] += qd * k[v];
          }
        }
#pragma GCC unroll 4
        for (std::int64_t r = 0; r < R; ++r)
#pragma GCC unroll 4
          for (std::int64_t v = 0; v < V; ++v) simd::store(scores + (r0 + r) * lds + j0 + v * simd::kLanes, vacc[r][v]);
        continue;
      }
      float acc[R][J] = {};
      if (nj == J) {  // fewer rows (decoding: one to three queries)
        for (std::int64_t d = 0; d < head_dim; ++d) {
          const float* krow = column(d, j0);
          for (std::int64_t r = 0; r < nr; ++r) {
            const float qd = q[(r0 + r) * ldq + d];
#pragma omp simd
            for (std::int64_t j = 0; j < J; ++j) acc[r][j] += qd * krow[j];
          }
        }
      } else {
        for (std::int64_t d = 0; d < head_dim; ++d) {
          const float* krow = column(d, j0);
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

// scores[r·lds + j] = Σ_d q[r·ldq + d]·keys_t[d·ldk + j] for r < rows, j < count (keys transposed,
// [head_dim][ldk]).
inline void scores_from_transposed_keys(const float* q, std::int64_t ldq, std::int64_t rows, const float* keys_t,
                                        std::int64_t ldk, std::int64_t count, std::int64_t head_dim, float* scores,
                                        std::int64_t lds) {
  scores_register_blocked(
      q, ldq, rows, [&](std::int64_t d, std::int64_t j0) { return keys_t + d * ldk + j0; }, count, head_dim, scores,
      lds);
}

// The same over panels: kScoreCols keys at a time, each panel [head_dim][kScoreCols] contiguous, so
// that one register block reads one contiguous stretch (a few queries against many blocks, as in
// decoding, read the summaries once, in order).
inline void scores_from_panels(const float* q, std::int64_t ldq, std::int64_t rows, const float* panels,
                               std::int64_t count, std::int64_t head_dim, float* scores, std::int64_t lds) {
  scores_register_blocked(
      q, ldq, rows,
      [&](std::int64_t d, std::int64_t j0) { return panels + (j0 / kScoreCols * head_dim + d) * kScoreCols; }, count,
      head_dim, scores, lds);
}

// keys[j][d] (count rows of head_dim) widened to fp32 into panels of `width` keys, each [head_dim]
// [width], zero past the last key: keys along the vector lanes. Panels of kScoreCols are what
// scores_from_panels reads; the block-selection kernel keeps its key tiles as panels of kLanes.
template <class T>
void panel_keys(const T* keys, std::int64_t count, std::int64_t head_dim, std::int64_t width, float* panels) {
  for (std::int64_t j0 = 0; j0 < count; j0 += width) {
    float* panel = panels + j0 * head_dim;
    for (std::int64_t j = 0; j < width; ++j)
      for (std::int64_t d = 0; d < head_dim; ++d)
        panel[d * width + j] = j0 + j < count ? widen(keys[(j0 + j) * head_dim + d]) : 0.0f;
  }
}

}  // namespace attnbench::kernels
