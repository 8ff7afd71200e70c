// The vector micro-kernels of the CPU attention tile loops, shared by flash_core (kernels/cpu) and the
// context-parallel block attention (kernels/distributed): the build's vector width, loads and stores that
// stay in registers, a branch-free 2^x, the staging of query and key/value tiles as fp32, and the
// register-blocked score (K·Qᵀ) and value (P·V) tiles.
// Everything here is inline; the width follows the flags of the including file (-march=native).
#pragma once
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "attnbench/dtype.hpp"

namespace attnbench::kernels::simd {

// One vector register's worth of floats, via the GCC/Clang vector extension, at the widest width the
// build targets (-march=native picks it): 16 lanes with AVX-512, 8 with AVX, 4 otherwise.
#if defined(__AVX512F__)
constexpr std::int64_t kLanes = 16;
typedef float vfloat __attribute__((vector_size(64)));
typedef std::int32_t vint __attribute__((vector_size(64)));
#elif defined(__AVX__)
constexpr std::int64_t kLanes = 8;
typedef float vfloat __attribute__((vector_size(32)));
typedef std::int32_t vint __attribute__((vector_size(32)));
#else
constexpr std::int64_t kLanes = 4;
typedef float vfloat __attribute__((vector_size(16)));
typedef std::int32_t vint __attribute__((vector_size(16)));
#endif

// Register blocking. Scores are computed transposed, st[j][i] (keys × queries), so that the online
// softmax runs down columns with every query in its own vector lane (no horizontal reductions) and the
// keys are read straight from their rows (no transpose). The score micro-tile is up to kKeyRows keys ×
// kQueryVecs vectors of queries; the output micro-tile kOutRows queries × up to kValueVecs vectors of
// the value dim. Sized to the register file (32 vector registers with AVX-512, 16 otherwise).
constexpr std::int64_t kKeyRows = 4;
constexpr std::int64_t kQueryVecs = kLanes == 16 ? 4 : 2;
constexpr std::int64_t kOutRows = 4;
constexpr std::int64_t kValueVecs = kLanes == 16 ? 4 : 2;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kLog2e = 1.4426950408889634f;

inline std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

inline vfloat load(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }
// Keeps a loaded vector in a register: without it GCC folds the load into each FMA that uses it, which
// turns one load per vector into one per FMA and makes the micro-kernels load-bound.
inline vfloat pin(vfloat v) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  asm("" : "+v"(v));
#endif
  return v;
}
inline vfloat splat(float x) { return vfloat{} + x; }
// Whether any lane of a comparison result (−1 or 0 per lane) is set: one mask instruction where the
// target has one (GCC otherwise extracts the lanes one by one).
inline bool any_lane(vint m) {
#if defined(__AVX512F__)
  const __m512i x = reinterpret_cast<__m512i>(m);
  return _mm512_test_epi32_mask(x, x) != 0;
#elif defined(__AVX__)
  return _mm256_movemask_ps(reinterpret_cast<__m256>(m)) != 0;
#else
  bool any = false;
  for (std::int64_t l = 0; l < kLanes; ++l) any |= m[l] != 0;
  return any;
#endif
}
inline vfloat vmax(vfloat a, vfloat b) { return a > b ? a : b; }
inline vfloat vmin(vfloat a, vfloat b) { return a < b ? a : b; }

// 2^f for f in [-0.5, 0.5], relative error about 2e-7: the Cephes exp2f polynomial, for a float or a
// vector of them.
template <class F>
inline F exp2_fraction(F f) {
  F poly = 1.535336188319500e-4f * f + 1.339887440266574e-3f;
  poly = poly * f + 9.618437357674640e-3f;
  poly = poly * f + 5.550332471162809e-2f;
  poly = poly * f + 2.402264791363012e-1f;
  poly = poly * f + 6.931472028550421e-1f;
  return poly * f + 1.0f;
}

// 2^x for x <= 0 (or -inf), lane-wise; relative error about 2e-7 (exp2_fraction); anything below
// 2^-126 becomes exactly 0 so masked scores contribute nothing.
inline vfloat exp2_nonpositive(vfloat x) {
  const vfloat lo = splat(-126.0f);
  const auto underflow = x < lo;
  x = underflow ? lo : x;
  const vfloat magic = splat(12582912.0f);  // 1.5·2^23: adding it rounds to an integer
  const vfloat t = x + magic;
  const vfloat n = t - magic;
  const vfloat poly = exp2_fraction(x - n);
  const vint exponent = (std::bit_cast<vint>(t) - 0x4B400000) << 23;
  vint bits = std::bit_cast<vint>(poly) + exponent;
  bits = underflow ? vint{} : bits;
  return std::bit_cast<vfloat>(bits);
}

inline float widen(float x) { return x; }
inline float widen(std::uint16_t x) { return bf16_to_float(x); }
inline void narrow(float x, float* dst) { *dst = x; }
inline void narrow(float x, std::uint16_t* dst) { *dst = float_to_bf16(x); }

// st[r][i] = Σ_d k[r][d]·qt[d][i] for Rows keys and Vecs vectors of queries.
template <std::int64_t Rows, std::int64_t Vecs>
inline void score_micro_tile(const float* k, std::int64_t ldk, const float* qt, std::int64_t ldq, float* st,
                             std::int64_t head_dim) {
  vfloat acc[Rows][Vecs] = {};
  for (std::int64_t d = 0; d < head_dim; ++d) {
    vfloat q[Vecs];
#pragma GCC unroll 4
    for (std::int64_t v = 0; v < Vecs; ++v) q[v] = pin(load(qt + d * ldq + v * kLanes));
#pragma GCC unroll 4
    for (std::int64_t r = 0; r < Rows; ++r) {
      const float kd = k[r * ldk + d];
#pragma GCC unroll 4
      for (std::int64_t v = 0; v < Vecs; ++v) acc[r][v] += kd * q[v];
    }
  }
#pragma GCC unroll 4
  for (std::int64_t r = 0; r < Rows; ++r)
#pragma GCC unroll 4
    for (std::int64_t v = 0; v < Vecs; ++v) store(st + r * ldq + v * kLanes, acc[r][v]);
}

template <std::int64_t Rows>
inline void score_rows(const float* k, std::int64_t ldk, const float* qt, std::int64_t ldq, float* st,
                       std::int64_t head_dim, std::int64_t query_vecs) {
  std::int64_t v = 0;
  for (; v + kQueryVecs <= query_vecs; v += kQueryVecs)
    score_micro_tile<Rows, kQueryVecs>(k, ldk, qt + v * kLanes, ldq, st + v * kLanes, head_dim);
  switch (query_vecs - v) {
    case 3:
      score_micro_tile<Rows, 3>(k, ldk, qt + v * kLanes, ldq, st + v * kLanes, head_dim);
      break;
    case 2:
      score_micro_tile<Rows, 2>(k, ldk, qt + v * kLanes, ldq, st + v * kLanes, head_dim);
      break;
    case 1:
      score_micro_tile<Rows, 1>(k, ldk, qt + v * kLanes, ldq, st + v * kLanes, head_dim);
      break;
    default:
      break;
  }
}

// acc[r][c..] += Σ_j pt[j][r]·v[j][c..] for kOutRows queries and Vecs vectors of the value dim.
template <std::int64_t Vecs>
inline void value_micro_tile(const float* pt, std::int64_t ldp, const float* v, std::int64_t ldv, float* acc,
                             std::int64_t lda, std::int64_t kv_count) {
  vfloat sum[kOutRows][Vecs];
#pragma GCC unroll 4
  for (std::int64_t r = 0; r < kOutRows; ++r)
#pragma GCC unroll 4
    for (std::int64_t c = 0; c < Vecs; ++c) sum[r][c] = load(acc + r * lda + c * kLanes);
  for (std::int64_t j = 0; j < kv_count; ++j) {
    vfloat vv[Vecs];
#pragma GCC unroll 4
    for (std::int64_t c = 0; c < Vecs; ++c) vv[c] = pin(load(v + j * ldv + c * kLanes));
#pragma GCC unroll 4
    for (std::int64_t r = 0; r < kOutRows; ++r) {
      const float p = pt[j * ldp + r];
#pragma GCC unroll 4
      for (std::int64_t c = 0; c < Vecs; ++c) sum[r][c] += p * vv[c];
    }
  }
#pragma GCC unroll 4
  for (std::int64_t r = 0; r < kOutRows; ++r)
#pragma GCC unroll 4
    for (std::int64_t c = 0; c < Vecs; ++c) store(acc + r * lda + c * kLanes, sum[r][c]);
}

// Queries [nq][D] from qsrc transposed to qt[d][i] (row stride ldq), scaled by qscale (the softmax scale
// in base-2 units), zero-padded to `cols` lanes.
template <class T>
inline void stage_queries(const T* qsrc, std::int64_t nq, std::int64_t D, float qscale, float* qt, std::int64_t ldq,
                          std::int64_t cols) {
  for (std::int64_t i = 0; i < nq; ++i)
    for (std::int64_t d = 0; d < D; ++d) qt[d * ldq + i] = widen(qsrc[i * D + d]) * qscale;
  if (cols > nq)
    for (std::int64_t d = 0; d < D; ++d) std::fill(qt + d * ldq + nq, qt + d * ldq + cols, 0.0f);
}

// Keys [k0, k0 + nk) and their values as fp32 for score_tile and accumulate_values: fp32 keys are read
// in place, and fp32 values when `values_in_place` (rows of whole vectors); otherwise widened (bf16)
// into ktile, and widened or padded to ldv columns into vtile.
struct KvTile {
  const float* keys;
  const float* values;
  std::int64_t ldval;
};
template <class T>
inline KvTile stage_kv_tile(const T* ksrc, const T* vsrc, std::int64_t k0, std::int64_t nk, std::int64_t D,
                            std::int64_t Dv, bool values_in_place, float* ktile, float* vtile, std::int64_t ldv) {
  constexpr bool in_place = std::is_same_v<T, float>;
  KvTile t{ktile, vtile, ldv};
  if constexpr (in_place) {
    t.keys = ksrc + k0 * D;
  } else {
    for (std::int64_t j = 0; j < nk * D; ++j) ktile[j] = widen(ksrc[k0 * D + j]);
  }
  if (values_in_place) {
    if constexpr (in_place) t.values = vsrc + k0 * Dv;
    t.ldval = Dv;
  } else {
    for (std::int64_t j = 0; j < nk; ++j) {
      float* vdst = vtile + j * ldv;
      for (std::int64_t c = 0; c < Dv; ++c) vdst[c] = widen(vsrc[(k0 + j) * Dv + c]);
      std::fill(vdst + Dv, vdst + ldv, 0.0f);
    }
  }
  return t;
}

// st[j][·] = K·Qᵀ for the nk keys at `keys` (rows of `head_dim`): register blocks of kKeyRows keys, the
// last block smaller.
inline void score_tile(const float* keys, std::int64_t head_dim, const float* qt, std::int64_t ldq, float* st,
                       std::int64_t nk, std::int64_t query_vecs) {
  std::int64_t j0 = 0;
  for (; j0 + kKeyRows <= nk; j0 += kKeyRows)
    score_rows<kKeyRows>(keys + j0 * head_dim, head_dim, qt, ldq, st + j0 * ldq, head_dim, query_vecs);
  switch (nk - j0) {
    case 3:
      score_rows<3>(keys + j0 * head_dim, head_dim, qt, ldq, st + j0 * ldq, head_dim, query_vecs);
      break;
    case 2:
      score_rows<2>(keys + j0 * head_dim, head_dim, qt, ldq, st + j0 * ldq, head_dim, query_vecs);
      break;
    case 1:
      score_rows<1>(keys + j0 * head_dim, head_dim, qt, ldq, st + j0 * ldq, head_dim, query_vecs);
      break;
    default:
      break;
  }
}

// One tile of the online softmax, one query per lane, on base-2 scores st[j][i] (masked ones −inf):
// the running max m and sum l per query are updated, st becomes the tile's unnormalised probabilities,
// and the nq rows of acc shrink by alpha = 2^(m_old − m_new) where the max grew.
inline void online_softmax_step(float* st, std::int64_t ldq, std::int64_t nk, std::int64_t cols, std::int64_t nq,
                                float* row_max, float* row_sum, float* alpha, float* acc, std::int64_t ldv) {
  for (std::int64_t i = 0; i < cols; i += kLanes) {
    vfloat tile_max = splat(kNegInf);
    for (std::int64_t j = 0; j < nk; ++j) tile_max = vmax(tile_max, load(st + j * ldq + i));
    const vfloat m_old = load(row_max + i);
    const vfloat m_new = vmax(m_old, tile_max);
    // A query with nothing allowed yet keeps m = -inf; subtracting 0 instead keeps exp2 at 0.
    const vfloat m_sub = m_new == splat(kNegInf) ? vfloat{} : m_new;
    vfloat sum{};
    for (std::int64_t j = 0; j < nk; ++j) {
      const vfloat e = exp2_nonpositive(load(st + j * ldq + i) - m_sub);
      store(st + j * ldq + i, e);
      sum += e;
    }
    const vfloat a = exp2_nonpositive(m_old - m_sub);
    store(alpha + i, a);
    store(row_sum + i, load(row_sum + i) * a + sum);
    store(row_max + i, m_new);
  }
  for (std::int64_t i = 0; i < nq; ++i)
    if (alpha[i] != 1.0f) {
      float* arow = acc + i * ldv;
      const float a = alpha[i];
#pragma omp simd
      for (std::int64_t c = 0; c < ldv; ++c) arow[c] *= a;
    }
}

// acc[i][·] += Σ_j st[j][i]·values[j][·] for the first out_rows queries (multiples of kOutRows; padding
// queries carry finite scores and are never written out).
inline void accumulate_values(const float* st, std::int64_t ldq, const float* values, std::int64_t ldval, float* acc,
                              std::int64_t ldv, std::int64_t out_rows, std::int64_t nk) {
  for (std::int64_t i0 = 0; i0 < out_rows; i0 += kOutRows) {
    float* arow = acc + i0 * ldv;
    std::int64_t c = 0;
    for (; c + kValueVecs * kLanes <= ldv; c += kValueVecs * kLanes)
      value_micro_tile<kValueVecs>(st + i0, ldq, values + c, ldval, arow + c, ldv, nk);
    switch ((ldv - c) / kLanes) {
      case 3:
        value_micro_tile<3>(st + i0, ldq, values + c, ldval, arow + c, ldv, nk);
        break;
      case 2:
        value_micro_tile<2>(st + i0, ldq, values + c, ldval, arow + c, ldv, nk);
        break;
      case 1:
        value_micro_tile<1>(st + i0, ldq, values + c, ldval, arow + c, ldv, nk);
        break;
      default:
        break;
    }
  }
}

}  // namespace attnbench::kernels::simd
