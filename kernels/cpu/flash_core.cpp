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

#include "kernels/cpu/simd_tiles.hpp"

namespace attnbench::kernels {
namespace {

using namespace simd;

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
    const TileBuffers buf(ws.thread_slice(omp_get_thread_num()), L);
    float *qt = buf.qt, *ktile = buf.ktile, *vtile = buf.vtile, *st = buf.st, *acc = buf.acc;
    float *row_max = buf.row_max, *row_sum = buf.row_sum, *alpha = buf.alpha;

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
      stage_queries(qsrc, nq, D, qscale, qt, ldq, cols);
      std::fill(acc, acc + out_rows * ldv, 0.0f);
      std::fill(row_max, row_max + cols, kNegInf);
      std::fill(row_sum, row_sum + cols, 0.0f);

      const T* ksrc = kbase + (b * p.kv_heads + kvh) * Lk * D;
      const T* vsrc = vbase + (b * p.kv_heads + kvh) * Lk * Dv;
      for (std::int64_t kti = 0; kti < k_tiles; ++kti) {
        const std::int64_t k0 = kti * bk, nk = std::min(bk, Lk - k0);
        const TileState state = tile_state(p, cfg, b, h, qtile, kti, TileRange{q0, nq, k0, nk});
        if (state == TileState::empty) continue;

        const KvTile kv = stage_kv_tile(ksrc, vsrc, k0, nk, D, Dv, values_in_place, ktile, vtile, ldv);

        // st = K·Qᵀ for this tile: keys in register blocks of kKeyRows, the last block smaller.
        score_tile(kv.keys, D, qt, ldq, st, nk, query_vecs);

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

        online_softmax_step(st, ldq, nk, cols, nq, row_max, row_sum, alpha, acc, ldv);

        // acc += P·V; padding queries (nq..out_rows) carry finite scores and are never written out.
        accumulate_values(st, ldq, kv.values, kv.ldval, acc, ldv, out_rows, nk);
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
  static_cast<TileLayout&>(l) =
      tile_layout(p.head_dim, l.cols, l.vdim, cfg.block_q, cfg.block_k, p.dtype != Dtype::f32);
  buffer_ = AlignedFloats(static_cast<std::size_t>(l.per_thread * threads));
}

TileLayout tile_layout(std::int64_t head_dim, std::int64_t cols, std::int64_t vdim, std::int64_t block_q,
                       std::int64_t block_k, bool widened_keys) {
  TileLayout l;
  std::int64_t at = 0;
  auto take = [&](std::int64_t floats) {  // every region starts on a 64-byte boundary
    const std::int64_t start = at;
    at += round_up(floats, 16);
    return start;
  };
  l.q_tile = take(head_dim * cols);
  l.k_tile = take(widened_keys ? block_k * head_dim : 0);
  l.v_tile = take(block_k * vdim);
  l.scores = take(block_k * cols);
  l.acc = take(std::max(round_up(block_q, kOutRows), cols) * vdim);
  l.row_max = take(cols);
  l.row_sum = take(cols);
  l.alpha = take(cols);
  l.per_thread = at;
  return l;
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
