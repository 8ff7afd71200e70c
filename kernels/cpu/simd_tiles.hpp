// The vector micro-kernels of the CPU attention tile loops, shared by flash_core (kernels/cpu) and the
// context-parallel block attention (kernels/distributed): the build's vector width, loads and stores that
// stay in registers, a branch-free 2^x, and the register-blocked score (K·Qᵀ) and value (P·V) tiles.
// Everything here is inline; the width follows the flags of the including file (-march=native).
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>

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
inline vfloat vmax(vfloat a, vfloat b) { return a > b ? a : b; }

// 2^x for x <= 0 (or -inf), lane-wise; relative error about 2e-7 (Cephes exp2f polynomial on
// [-0.5, 0.5]); anything below 2^-126 becomes exactly 0 so masked scores contribute nothing.
inline vfloat exp2_nonpositive(vfloat x) {
  const vfloat lo = splat(-126.0f);
  const auto underflow = x < lo;
  x = underflow ? lo : x;
  const vfloat magic = splat(12582912.0f);  // 1.5·2^23: adding it rounds to an integer
  const vfloat t = x + magic;
  const vfloat n = t - magic;
  const vfloat f = x - n;
  vfloat poly = 1.535336188319500e-4f * f + 1.339887440266574e-3f;
  poly = poly * f + 9.618437357674640e-3f;
  poly = poly * f + 5.550332471162809e-2f;
  poly = poly * f + 2.402264791363012e-1f;
  poly = poly * f + 6.931472028550421e-1f;
  poly = poly * f + 1.0f;
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

}  // namespace attnbench::kernels::simd
