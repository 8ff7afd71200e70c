// Host-side bookkeeping of the CUDA flash kernels, kept free of CUDA so the CPU tests check it: a mask
// lowered to per-query-tile lists of key tiles (empty tiles dropped, partial ones with a per-element
// bitmask from Mask::allowed), and MoBA's per-query selection rule (which blocks compete, how many win).
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "attnbench/mask.hpp"

#if defined(__CUDACC__)
#define ATTNBENCH_HOST_DEVICE __host__ __device__
#else
#define ATTNBENCH_HOST_DEVICE
#endif

namespace attnbench::cuda {

// The kernels' bitmask word: one bit per key of a tile, so key tiles are at most 64 wide.
constexpr std::int64_t kMaxBitmaskTileKeys = 64;

// One non-empty key tile of a query tile: `bits` is -1 for a full tile (every in-range element allowed),
// else the index of its bitmask, block_q words in LoweredMask::bits.
struct TileEntry {
  std::int32_t k_tile = 0;
  std::int32_t bits = -1;
};

// A mask lowered for kernels that walk, per query tile, only the key tiles the mask touches.
// maps is 1 when the mask does not vary with batch or head, else batch·heads (indexed b·heads + h).
// Entries of map m, query tile qt are entries[row_start[m·q_tiles + qt] .. row_start[m·q_tiles + qt + 1]),
// in ascending key-tile order. Bit c of bits[e·block_q + r] says whether query qt·block_q + r may see key
// kt·block_k + c; bits outside [0, q_len) x [0, kv_len) are 0.
struct LoweredMask {
  std::int64_t block_q = 0, block_k = 0, q_tiles = 0, k_tiles = 0, maps = 0;
  std::vector<std::int32_t> row_start;
  std::vector<TileEntry> entries;
  std::vector<std::uint64_t> bits;
  std::int64_t partial_tiles() const {
    return static_cast<std::int64_t>(bits.size()) / std::max<std::int64_t>(block_q, 1);
  }
};

inline LoweredMask lower_mask(const Mask& mask, std::int64_t block_q, std::int64_t block_k) {
  if (block_k < 1 || block_k > kMaxBitmaskTileKeys || block_q < 1)
    throw std::invalid_argument("lower_mask: key tiles must be 1 to 64 keys wide");
  const MaskShape& s = mask.shape();
  LoweredMask out;
  out.block_q = block_q;
  out.block_k = block_k;
  out.q_tiles = (s.q_len + block_q - 1) / block_q;
  out.k_tiles = (s.k_len + block_k - 1) / block_k;
  const bool per_head = mask.varies_with_batch_or_head();
  out.maps = per_head ? s.batch * s.heads : 1;
  out.row_start.reserve(static_cast<std::size_t>(out.maps * out.q_tiles + 1));
  out.row_start.push_back(0);
  for (std::int64_t m = 0; m < out.maps; ++m) {
    const std::int64_t b = per_head ? m / s.heads : 0, h = per_head ? m % s.heads : 0;
    const BlockMap map = lower_to_block_map(mask, b, h, block_q, block_k);
    for (std::int64_t qt = 0; qt < out.q_tiles; ++qt) {
      for (std::int64_t kt = 0; kt < out.k_tiles; ++kt) {
        const TileState st = map.at(qt, kt);
        if (st == TileState::empty) continue;
        TileEntry e;
        e.k_tile = static_cast<std::int32_t>(kt);
        if (st == TileState::partial) {
          e.bits = static_cast<std::int32_t>(out.bits.size() / static_cast<std::size_t>(block_q));
          const std::int64_t q0 = qt * block_q, k0 = kt * block_k;
          for (std::int64_t r = 0; r < block_q; ++r) {
            std::uint64_t word = 0;
            if (q0 + r < s.q_len)
              for (std::int64_t c = 0; c < block_k && k0 + c < s.k_len; ++c)
                if (mask.allowed(b, h, q0 + r, k0 + c)) word |= std::uint64_t{1} << c;
            out.bits.push_back(word);
          }
        }
        out.entries.push_back(e);
      }
      if (out.entries.size() > static_cast<std::size_t>(INT32_MAX) || out.bits.size() / block_q > INT32_MAX)
        throw std::length_error("lower_mask: more tiles than 32-bit indices address");
      out.row_start.push_back(static_cast<std::int32_t>(out.entries.size()));
    }
  }
  return out;
}

// Whether the lowered mask allows (q, k) for map m: what the kernels compute element by element.
inline bool lowered_allows(const LoweredMask& l, std::int64_t m, std::int64_t q, std::int64_t k) {
  const std::int64_t qt = q / l.block_q, kt = k / l.block_k;
  const std::int64_t row = m * l.q_tiles + qt;
  for (std::int32_t i = l.row_start[static_cast<std::size_t>(row)]; i < l.row_start[static_cast<std::size_t>(row + 1)];
       ++i) {
    const TileEntry& e = l.entries[static_cast<std::size_t>(i)];
    if (e.k_tile != kt) continue;
    if (e.bits < 0) return true;
    return (l.bits[static_cast<std::size_t>(e.bits * l.block_q + q % l.block_q)] >> (k % l.block_k)) & 1u;
  }
  return false;
}

// MoBA's rule for one query (kernels/cpu/block_select_core.hpp, query_blocks with own_in_budget and
// own_without_causal): the keys the mask leaves [0, visible_end), the own block (-1: none), candidates
// [0, candidate_end) other than own, and how many of them win by score. Shared by host and device.
struct MobaRow {
  std::int64_t visible_end = 0, own = -1, candidate_end = 0, candidates = 0, budget = 0;
};

ATTNBENCH_HOST_DEVICE inline MobaRow moba_row(std::int64_t q, std::int64_t q_len, std::int64_t kv_len, bool causal,
                                              std::int64_t block, std::int64_t topk) {
  const std::int64_t pos = q + kv_len - q_len;
  MobaRow g;
  if (causal) {
    if (pos < 0) return g;
    g.visible_end = pos + 1 < kv_len ? pos + 1 : kv_len;
    g.own = pos / block;
    g.candidate_end = g.own;
    g.candidates = g.own;
  } else {
    g.visible_end = kv_len;
    g.own = pos >= 0 && pos < kv_len ? pos / block : -1;
    g.candidate_end = (kv_len + block - 1) / block;
    g.candidates = g.candidate_end - (g.own >= 0 ? 1 : 0);
  }
  std::int64_t budget = topk - (g.own >= 0 ? 1 : 0);
  if (budget < 0) budget = 0;
  g.budget = budget < g.candidates ? budget : g.candidates;
  return g;
}

// The most key blocks the CUDA moba keeps per query (its selection is a bitmask of blocks in shared memory).
constexpr std::int64_t kMobaMaxBlocks = 2048;

}  // namespace attnbench::cuda
