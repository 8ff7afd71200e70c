// The tiled online-softmax forward pass: tiles of queries stream over tiles of keys, keeping a running
// row max and row sum so that no L×L score matrix ever exists (Dao et al. 2022, Algorithm 1; the
// FlashAttention-2 loop order, with one query tile per work item).
#include "kernels/cpu/flash_core.hpp"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace attnbench::kernels {
namespace {

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

std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

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

struct TileRange {
  std::int64_t q0, nq, k0, nk;
};

// What one tile holds: the config's block maps when it has them (a sparse method's choice wins), else
// the closed forms for full and causal, else the mask itself.
TileState tile_state(const Problem& p, const FlashConfig& cfg, std::int64_t b, std::int64_t h, std::int64_t qt,
                     std::int64_t kt, const TileRange& t) {
  if (cfg.block_maps.size() == 1) return cfg.block_maps[0].at(qt, kt);
  if (!cfg.block_maps.empty()) return cfg.block_maps[static_cast<std::size_t>(b * p.heads + h)].at(qt, kt);
  const Mask& mask = *p.mask;
  if (mask.is_full()) return TileState::full;
  if (mask.is_causal()) {
    const std::int64_t off = p.kv_len - p.q_len;
    if (t.k0 + t.nk - 1 <= t.q0 + off) return TileState::full;
    if (t.k0 > t.q0 + t.nq - 1 + off) return TileState::empty;
    return TileState::partial;
  }
  return mask.tile(b, h, t.q0, t.q0 + t.nq, t.k0, t.k0 + t.nk);
}

template <class T>
void forward(const Problem& p, const Inputs& in, Tensor& out, const FlashConfig& cfg, FlashWorkspace& ws) {
  const T* qbase = static_cast<const T*>(in.q.data());
  const T* kbase = static_cast<const T*>(in.k.data());
  const T* vbase = static_cast<const T*>(in.v.data());
  T* obase = static_cast<T*>(out.data());

  const std::int64_t B = p.batch, H = p.heads, Lq = p.q_len, Lk = p.kv_len, D = p.head_dim, Dv = p.value_dim;
  const std::int64_t bq = cfg.block_q, bk = cfg.block_k;
  const std::int64_t q_tiles = (Lq + bq - 1) / bq, k_tiles = (Lk + bk - 1) / bk;
  const std::int64_t items = q_tiles * B * H;
  const auto& L = ws.layout();
  const std::int64_t ldq = L.cols, ldv = L.vdim;
  // fp32 keys and values whose rows are whole vectors are read in place; anything else is widened
  // (bf16) or padded (odd value dims) into the thread's tile first.
  constexpr bool in_place = std::is_same_v<T, float>;
  const bool values_in_place = in_place && Dv % kLanes == 0;
  // Scores come out in base-2 units so that the softmax uses exp2: softmax is unchanged.
  const float qscale = static_cast<float>(p.scale) * kLog2e;
  const bool causal = p.mask->is_causal();
  const std::int64_t offset = Lk - Lq;
  const Mask& mask = *p.mask;

#pragma omp parallel num_threads(ws.threads())
  {
    float* slice = ws.thread_slice(omp_get_thread_num());
    float* qt = slice + L.q_tile;
    float* ktile = slice + L.k_tile;
    float* vtile = slice + L.v_tile;
    float* st = slice + L.scores;
    float* acc = slice + L.acc;
    float* row_max = slice + L.row_max;
    float* row_sum = slice + L.row_sum;
    float* alpha = slice + L.alpha;

    // Heaviest query tiles first (the last ones under a causal mask), so dynamic scheduling balances.
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t item = 0; item < items; ++item) {
      const std::int64_t qtile = q_tiles - 1 - item / (B * H);
      const std::int64_t bh = item % (B * H), b = bh / H, h = bh % H;
      const std::int64_t kvh = p.kv_head_of(h);
      const std::int64_t q0 = qtile * bq, nq = std::min(bq, Lq - q0);
      const std::int64_t cols = round_up(nq, kLanes), query_vecs = cols / kLanes;
      const std::int64_t out_rows = round_up(nq, kOutRows);

      // Queries transposed to [d][i], pre-scaled, zero-padded to whole vectors.
      const T* qsrc = qbase + ((b * H + h) * Lq + q0) * D;
      for (std::int64_t i = 0; i < nq; ++i)
        for (std::int64_t d = 0; d < D; ++d) qt[d * ldq + i] = widen(qsrc[i * D + d]) * qscale;
      if (cols > nq)
        for (std::int64_t d = 0; d < D; ++d) std::fill(qt + d * ldq + nq, qt + d * ldq + cols, 0.0f);
      std::fill(acc, acc + out_rows * ldv, 0.0f);
      std::fill(row_max, row_max + cols, kNegInf);
      std::fill(row_sum, row_sum + cols, 0.0f);

      const T* ksrc = kbase + (b * p.kv_heads + kvh) * Lk * D;
      const T* vsrc = vbase + (b * p.kv_heads + kvh) * Lk * Dv;
      for (std::int64_t kti = 0; kti < k_tiles; ++kti) {
        const std::int64_t k0 = kti * bk, nk = std::min(bk, Lk - k0);
        const TileState state = tile_state(p, cfg, b, h, qtile, kti, TileRange{q0, nq, k0, nk});
        if (state == TileState::empty) continue;

        const float* keys;
        if constexpr (in_place) {
          keys = ksrc + k0 * D;
        } else {
          for (std::int64_t j = 0; j < nk * D; ++j) ktile[j] = widen(ksrc[k0 * D + j]);
          keys = ktile;
        }
        const float* values = vtile;
        std::int64_t ldval = ldv;
        if (values_in_place) {
          if constexpr (in_place) values = vsrc + k0 * Dv;
          ldval = Dv;
        } else {
          for (std::int64_t j = 0; j < nk; ++j) {
            float* vdst = vtile + j * ldv;
            for (std::int64_t c = 0; c < Dv; ++c) vdst[c] = widen(vsrc[(k0 + j) * Dv + c]);
            std::fill(vdst + Dv, vdst + ldv, 0.0f);
          }
        }

        // st = K·Qᵀ for this tile: keys in register blocks of kKeyRows, the last block smaller.
        std::int64_t j0 = 0;
        for (; j0 + kKeyRows <= nk; j0 += kKeyRows)
          score_rows<kKeyRows>(keys + j0 * D, D, qt, ldq, st + j0 * ldq, D, query_vecs);
        switch (nk - j0) {
          case 3:
            score_rows<3>(keys + j0 * D, D, qt, ldq, st + j0 * ldq, D, query_vecs);
            break;
          case 2:
            score_rows<2>(keys + j0 * D, D, qt, ldq, st + j0 * ldq, D, query_vecs);
            break;
          case 1:
            score_rows<1>(keys + j0 * D, D, qt, ldq, st + j0 * ldq, D, query_vecs);
            break;
          default:
            break;
        }

        // Masking: only partial tiles pay for it; causal by its closed form, anything else by predicate.
        if (state == TileState::partial) {
          for (std::int64_t j = 0; j < nk; ++j) {
            float* srow = st + j * ldq;
            if (causal) {
              // key k0 + j is visible to query q0 + i when i >= k0 + j - offset - q0
              const std::int64_t first_seen = std::clamp<std::int64_t>(k0 + j - offset - q0, 0, nq);
              std::fill(srow, srow + first_seen, kNegInf);
            } else {
              for (std::int64_t i = 0; i < nq; ++i)
                if (!mask.allowed(b, h, q0 + i, k0 + j)) srow[i] = kNegInf;
            }
          }
        }

        // Online softmax, one query per lane: running max m, running sum l, and the factor alpha
        // by which earlier accumulation shrinks when m grows.
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

        // acc += P·V; padding queries (nq..out_rows) carry finite scores and are never written out.
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

      // Normalise; a query no key was allowed for has row_sum 0 and is written as zeros.
      T* odst = obase + ((b * H + h) * Lq + q0) * Dv;
      for (std::int64_t i = 0; i < nq; ++i) {
        const float inv = row_sum[i] > 0.0f ? 1.0f / row_sum[i] : 0.0f;
        const float* arow = acc + i * ldv;
        for (std::int64_t c = 0; c < Dv; ++c) narrow(arow[c] * inv, odst + i * Dv + c);
      }
    }
  }
}

}  // namespace

FlashConfig make_flash_config(const Problem& p, std::int64_t block_q, std::int64_t block_k) {
  if (block_q <= 0 || block_k <= 0) throw std::invalid_argument("flash: block sizes must be positive");
  FlashConfig cfg;
  cfg.block_q = block_q;
  cfg.block_k = block_k;
  if (!p.mask) throw std::invalid_argument("flash: problem has no mask");
  if (p.mask->is_full() || p.mask->is_causal()) return cfg;
  if (!p.mask->varies_with_batch_or_head()) {
    cfg.block_maps.push_back(lower_to_block_map(*p.mask, 0, 0, block_q, block_k));
  } else {
    for (std::int64_t b = 0; b < p.batch; ++b)
      for (std::int64_t h = 0; h < p.heads; ++h)
        cfg.block_maps.push_back(lower_to_block_map(*p.mask, b, h, block_q, block_k));
  }
  return cfg;
}

FlashWorkspace::FlashWorkspace(const Problem& p, const FlashConfig& cfg, int threads) : threads_(threads) {
  if (threads < 1) throw std::invalid_argument("flash: need at least one thread");
  Layout& l = layout_;
  l.cols = round_up(cfg.block_q, kLanes);
  l.vdim = round_up(std::max<std::int64_t>(p.value_dim, 1), kLanes);
  const std::int64_t out_rows = round_up(cfg.block_q, kOutRows);
  // Every region starts on a 64-byte boundary.
  std::int64_t at = 0;
  auto take = [&](std::int64_t floats) {
    const std::int64_t start = at;
    at += round_up(floats, 16);
    return start;
  };
  l.q_tile = take(p.head_dim * l.cols);
  l.k_tile = p.dtype == Dtype::f32 ? take(0) : take(cfg.block_k * p.head_dim);
  l.v_tile = take(cfg.block_k * l.vdim);
  l.scores = take(cfg.block_k * l.cols);
  l.acc = take(std::max(out_rows, l.cols) * l.vdim);
  l.row_max = take(l.cols);
  l.row_sum = take(l.cols);
  l.alpha = take(l.cols);
  l.per_thread = at;
  buffer_ = AlignedFloats(static_cast<std::size_t>(l.per_thread * threads));
}

void flash_forward_cpu(const Problem& p, const Inputs& in, Tensor& out, const FlashConfig& cfg, FlashWorkspace& ws) {
  if (p.dtype != in.q.dtype() || p.dtype != in.k.dtype() || p.dtype != in.v.dtype() || p.dtype != out.dtype())
    throw std::invalid_argument("flash: inputs and output must all have the problem's dtype");
  switch (p.dtype) {
    case Dtype::f32:
      forward<float>(p, in, out, cfg, ws);
      break;
    case Dtype::bf16:
      forward<std::uint16_t>(p, in, out, cfg, ws);
      break;
    default:
      throw std::invalid_argument("flash: fp32 and bf16 only");
  }
}

}  // namespace attnbench::kernels
