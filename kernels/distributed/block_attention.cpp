// One rank's queries against one block of keys, folded into an online-softmax state: the tile loop of
// flash_core (scores kept keys × queries so that every query owns a vector lane), with the state read
// from and written back to a SoftmaxState instead of being normalised, so blocks from other ranks merge.
#include "kernels/distributed/block_attention.hpp"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "kernels/cpu/simd_tiles.hpp"

namespace attnbench::kernels::distributed {
namespace {

using namespace simd;  // the vector micro-kernels flash_core uses (kernels/cpu/simd_tiles.hpp)

constexpr std::int64_t kDecodeKeys = 64;  // keys scored at a time by the decoding form

// The per-thread regions of BlockAttention's buffer for decoding, in floats from the slice start (the
// tile loop's are kernels::tile_layout's).
struct DecodeLayout {
  std::int64_t query, scores, per_thread;
};

// Keys always get a tile of their own: a block's keys may come from another rank's buffer.
TileLayout tile_layout(const BlockShape& s, std::int64_t cols, std::int64_t vdim, std::int64_t block_q,
                       std::int64_t block_k) {
  return kernels::tile_layout(s.head_dim, cols, vdim, block_q, block_k, true);
}

DecodeLayout decode_layout(const BlockShape& s) {
  const std::int64_t rows = s.heads / s.kv_heads * s.q_rows;
  DecodeLayout l{};
  l.query = 0;
  l.scores = round_up(rows * s.head_dim, 16);
  l.per_thread = l.scores + rows * kDecodeKeys;
  return l;
}

template <class T>
void accumulate_tiles(const BlockShape& s, std::int64_t block_q, std::int64_t block_k, std::int64_t cols_max,
                      std::int64_t ldv, int threads, float* buffer, std::int64_t per_thread, const T* qbase,
                      const T* kbase, const T* vbase, std::int64_t Lk, std::int64_t diagonal, SoftmaxState& state) {
  const std::int64_t B = s.batch, H = s.heads, Lq = s.q_rows, D = s.head_dim, Dv = s.value_dim;
  const std::int64_t G = s.heads / s.kv_heads;
  const std::int64_t bq = block_q, bk = block_k;
  const std::int64_t q_tiles = (Lq + bq - 1) / bq, k_tiles = (Lk + bk - 1) / bk;
  const std::int64_t items = q_tiles * B * H;
  const TileLayout L = tile_layout(s, cols_max, ldv, bq, bk);
  const std::int64_t ldq = cols_max;
  constexpr bool in_place = std::is_same_v<T, float>;
  const bool values_in_place = in_place && Dv % kLanes == 0;
  const float qscale = static_cast<float>(s.scale) * kLog2e;
  const bool masked = diagonal != kNoMask;

#pragma omp parallel num_threads(threads)
  {
    const TileBuffers buf(buffer + static_cast<std::int64_t>(omp_get_thread_num()) * per_thread, L);
    float *qt = buf.qt, *ktile = buf.ktile, *vtile = buf.vtile, *st = buf.st, *acc = buf.acc;
    float *row_max = buf.row_max, *row_sum = buf.row_sum, *alpha = buf.alpha;

#pragma omp for schedule(dynamic, 1)
    for (std::int64_t item = 0; item < items; ++item) {
      const std::int64_t qtile = q_tiles - 1 - item / (B * H);
      const std::int64_t bh = item % (B * H), b = bh / H, h = bh % H, kvh = h / G;
      const std::int64_t q0 = qtile * bq, nq = std::min(bq, Lq - q0);
      if (masked && q0 + nq - 1 + diagonal < 0) continue;  // no key of this block is visible to these queries
      const std::int64_t cols = round_up(nq, kLanes), query_vecs = cols / kLanes;
      const std::int64_t out_rows = round_up(nq, kOutRows);

      const T* qsrc = qbase + ((b * H + h) * Lq + q0) * D;
      stage_queries(qsrc, nq, D, qscale, qt, ldq, cols);
      // The state of these rows into the tile; padding rows start empty and are never written back.
      const std::int64_t row0 = (b * H + h) * Lq + q0;
      std::fill(acc, acc + std::max(out_rows, cols) * ldv, 0.0f);
      for (std::int64_t i = 0; i < nq; ++i)
        std::memcpy(acc + i * ldv, state.acc.data() + (row0 + i) * Dv, static_cast<std::size_t>(Dv) * sizeof(float));
      std::fill(row_max, row_max + cols, kNegInf);
      std::fill(row_sum, row_sum + cols, 0.0f);
      std::copy(state.max.begin() + row0, state.max.begin() + row0 + nq, row_max);
      std::copy(state.sum.begin() + row0, state.sum.begin() + row0 + nq, row_sum);

      const T* ksrc = kbase + (b * s.kv_heads + kvh) * Lk * D;
      const T* vsrc = vbase + (b * s.kv_heads + kvh) * Lk * Dv;
      for (std::int64_t kti = 0; kti < k_tiles; ++kti) {
        const std::int64_t k0 = kti * bk, nk = std::min(bk, Lk - k0);
        bool partial = false;
        if (masked) {
          if (k0 > q0 + nq - 1 + diagonal) break;  // this and every later tile are empty
          partial = k0 + nk - 1 > q0 + diagonal;
        }

        const KvTile kv = stage_kv_tile(ksrc, vsrc, k0, nk, D, Dv, values_in_place, ktile, vtile, ldv);

        score_tile(kv.keys, D, qt, ldq, st, nk, query_vecs);

        if (partial)  // key k0 + j is visible to query q0 + i when i >= k0 + j - diagonal - q0
          for (std::int64_t j = 0; j < nk; ++j) {
            const std::int64_t first_seen = std::clamp<std::int64_t>(k0 + j - diagonal - q0, 0, nq);
            std::fill(st + j * ldq, st + j * ldq + first_seen, kNegInf);
          }

        online_softmax_step(st, ldq, nk, cols, nq, row_max, row_sum, alpha, acc, ldv);

        accumulate_values(st, ldq, kv.values, kv.ldval, acc, ldv, out_rows, nk);
      }

      for (std::int64_t i = 0; i < nq; ++i)
        std::memcpy(state.acc.data() + (row0 + i) * Dv, acc + i * ldv, static_cast<std::size_t>(Dv) * sizeof(float));
      std::copy(row_max, row_max + nq, state.max.begin() + row0);
      std::copy(row_sum, row_sum + nq, state.sum.begin() + row0);
    }
  }
}

// Decoding: one item per (batch, kv head) with the group's query heads × queries as rows; each key row
// is read once for all of them, scores are dot products along head_dim.
template <class T>
void accumulate_rows(const BlockShape& s, int threads, float* buffer, std::int64_t per_thread, const T* qbase,
                     const T* kbase, const T* vbase, std::int64_t Lk, std::int64_t diagonal, SoftmaxState& state) {
  const std::int64_t B = s.batch, H = s.heads, Hkv = s.kv_heads, G = H / Hkv, Lq = s.q_rows;
  const std::int64_t D = s.head_dim, Dv = s.value_dim, rows = G * Lq;
  const DecodeLayout L = decode_layout(s);
  const float qscale = static_cast<float>(s.scale) * kLog2e;

#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(threads)
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t kvh = 0; kvh < Hkv; ++kvh) {
      float* slice = buffer + static_cast<std::int64_t>(omp_get_thread_num()) * per_thread;
      float* qf = slice + L.query;
      float* st = slice + L.scores;
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t h = kvh * G + r / Lq, i = r % Lq;
        const T* qsrc = qbase + ((b * H + h) * Lq + i) * D;
        for (std::int64_t d = 0; d < D; ++d) qf[r * D + d] = widen(qsrc[d]) * qscale;
      }
      const T* kbh = kbase + (b * Hkv + kvh) * Lk * D;
      const T* vbh = vbase + (b * Hkv + kvh) * Lk * Dv;
      for (std::int64_t j0 = 0; j0 < Lk; j0 += kDecodeKeys) {
        const std::int64_t nj = std::min(kDecodeKeys, Lk - j0);
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t i = r % Lq;
          // Keys [0, visible) of the block are visible to query i.
          const std::int64_t visible = diagonal == kNoMask ? Lk : std::clamp<std::int64_t>(i + diagonal + 1, 0, Lk);
          const std::int64_t nv = std::clamp<std::int64_t>(visible - j0, 0, nj);
          float* srow = st + r * kDecodeKeys;
          const float* qrow = qf + r * D;
          for (std::int64_t j = 0; j < nv; ++j) {
            const T* krow = kbh + (j0 + j) * D;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (std::int64_t d = 0; d < D; ++d) dot += qrow[d] * widen(krow[d]);
            srow[j] = dot;
          }
          std::fill(srow + nv, srow + kDecodeKeys, kNegInf);
        }
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t h = kvh * G + r / Lq, i = r % Lq, row = (b * H + h) * Lq + i;
          float* srow = st + r * kDecodeKeys;
          vfloat vm = splat(kNegInf);
          for (std::int64_t j = 0; j < kDecodeKeys; j += kLanes) vm = vmax(vm, load(srow + j));
          float tile_max = kNegInf;
          for (std::int64_t l = 0; l < kLanes; ++l) tile_max = std::max(tile_max, vm[l]);
          const float m_old = state.max[static_cast<std::size_t>(row)];
          const float m_new = std::max(m_old, tile_max);
          if (m_new == kNegInf) {  // nothing visible yet: probabilities all 0
            std::fill(srow, srow + kDecodeKeys, 0.0f);
            continue;
          }
          vfloat vsum{};
          for (std::int64_t j = 0; j < kDecodeKeys; j += kLanes) {
            const vfloat e = exp2_nonpositive(load(srow + j) - splat(m_new));
            store(srow + j, e);
            vsum += e;
          }
          float sum = 0.0f;
          for (std::int64_t l = 0; l < kLanes; ++l) sum += vsum[l];
          const float a = m_old == kNegInf ? 0.0f : std::exp2(m_old - m_new);
          float* arow = state.acc.data() + row * Dv;
          if (a != 1.0f) {
#pragma omp simd
            for (std::int64_t c = 0; c < Dv; ++c) arow[c] *= a;
          }
          state.sum[static_cast<std::size_t>(row)] = state.sum[static_cast<std::size_t>(row)] * a + sum;
          state.max[static_cast<std::size_t>(row)] = m_new;
        }
        for (std::int64_t j = 0; j < nj; ++j) {
          const T* vrow = vbh + (j0 + j) * Dv;
          for (std::int64_t r = 0; r < rows; ++r) {
            const float pr = st[r * kDecodeKeys + j];
            if (pr == 0.0f) continue;
            const std::int64_t h = kvh * G + r / Lq, row = (b * H + h) * Lq + r % Lq;
            float* arow = state.acc.data() + row * Dv;
#pragma omp simd
            for (std::int64_t c = 0; c < Dv; ++c) arow[c] += pr * widen(vrow[c]);
          }
        }
      }
    }
}

}  // namespace

SoftmaxState::SoftmaxState(std::int64_t rows_, std::int64_t value_dim_)
    : rows(rows_),
      value_dim(value_dim_),
      max(static_cast<std::size_t>(rows_)),
      sum(static_cast<std::size_t>(rows_)),
      acc(static_cast<std::size_t>(rows_ * value_dim_)) {
  reset();
}

void SoftmaxState::reset() {
  std::fill(max.begin(), max.end(), kNegInf);
  std::fill(sum.begin(), sum.end(), 0.0f);
  std::fill(acc.begin(), acc.end(), 0.0f);
}

BlockAttention::BlockAttention(const BlockShape& s, Dtype dtype, std::int64_t max_kv_rows, int threads,
                               std::int64_t block_q, std::int64_t block_k)
    : shape_(s), dtype_(dtype), block_q_(block_q), block_k_(block_k), threads_(threads) {
  (void)max_kv_rows;  // tiles are independent of the block length
  if (dtype != Dtype::f32 && dtype != Dtype::bf16) throw std::invalid_argument("block attention: fp32 or bf16 only");
  if (threads < 1 || s.kv_heads < 1 || s.heads % s.kv_heads != 0)
    throw std::invalid_argument("block attention: needs a thread and heads divisible by kv_heads");
  cols_ = round_up(block_q_, kLanes);
  vdim_ = round_up(std::max<std::int64_t>(s.value_dim, 1), kLanes);
  per_thread_ =
      std::max(tile_layout(s, cols_, vdim_, block_q_, block_k_).per_thread, round_up(decode_layout(s).per_thread, 16));
  buffer_ = AlignedFloats(static_cast<std::size_t>(per_thread_ * threads));
}

void BlockAttention::accumulate(const void* q, const void* k, const void* v, std::int64_t kv_rows,
                                std::int64_t diagonal, SoftmaxState& state) {
  if (kv_rows <= 0) return;
  if (dtype_ == Dtype::bf16)
    accumulate_tiles(shape_, block_q_, block_k_, cols_, vdim_, threads_, buffer_.data(), per_thread_,
                     static_cast<const std::uint16_t*>(q), static_cast<const std::uint16_t*>(k),
                     static_cast<const std::uint16_t*>(v), kv_rows, diagonal, state);
  else
    accumulate_tiles(shape_, block_q_, block_k_, cols_, vdim_, threads_, buffer_.data(), per_thread_,
                     static_cast<const float*>(q), static_cast<const float*>(k), static_cast<const float*>(v), kv_rows,
                     diagonal, state);
}

void BlockAttention::accumulate_decode(const void* q, const void* k, const void* v, std::int64_t kv_rows,
                                       std::int64_t diagonal, SoftmaxState& state) {
  if (kv_rows <= 0) return;
  if (dtype_ == Dtype::bf16)
    accumulate_rows(shape_, threads_, buffer_.data(), per_thread_, static_cast<const std::uint16_t*>(q),
                    static_cast<const std::uint16_t*>(k), static_cast<const std::uint16_t*>(v), kv_rows, diagonal,
                    state);
  else
    accumulate_rows(shape_, threads_, buffer_.data(), per_thread_, static_cast<const float*>(q),
                    static_cast<const float*>(k), static_cast<const float*>(v), kv_rows, diagonal, state);
}

void normalise(const SoftmaxState& state, Dtype dtype, void* out) {
  const std::int64_t Dv = state.value_dim;
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < state.rows; ++r) {
    const float l = state.sum[static_cast<std::size_t>(r)];
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    const float* a = state.acc.data() + r * Dv;
    if (dtype == Dtype::bf16) {
      std::uint16_t* o = static_cast<std::uint16_t*>(out) + r * Dv;
      for (std::int64_t c = 0; c < Dv; ++c) o[c] = float_to_bf16(a[c] * inv);
    } else {
      float* o = static_cast<float*>(out) + r * Dv;
#pragma omp simd
      for (std::int64_t c = 0; c < Dv; ++c) o[c] = a[c] * inv;
    }
  }
}

void rescale_to(SoftmaxState& state, const float* global_max) {
  const std::int64_t Dv = state.value_dim;
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < state.rows; ++r) {
    const std::size_t i = static_cast<std::size_t>(r);
    const float m = state.max[i], g = global_max[r];
    const float w = (m == kNegInf || g == kNegInf) ? 0.0f : std::exp2(m - g);
    state.sum[i] *= w;
    float* a = state.acc.data() + r * Dv;
#pragma omp simd
    for (std::int64_t c = 0; c < Dv; ++c) a[c] *= w;
    state.max[i] = g;
  }
}

}  // namespace attnbench::kernels::distributed
