// The argument block of the CUDA flash kernels and their tile sizes, free of CUDA headers: the kernels
// include it, and so does the CPU warp emulator's test (tests/kernels/cuda_emulated/), which runs the
// same kernel source on the host.
#pragma once
#include <cstdint>
#include <stdexcept>

#include "attnbench/mask.hpp"
#include "attnbench/problem.hpp"
#include "kernels/cuda/block_lowering.hpp"

namespace attnbench::cuda {

// How a kernel decides which (query, key) pairs are allowed.
enum class MaskMode : int {
  dense = 0,  // full, or causal by closed form (k <= q + kv_len - q_len)
  tiles = 1,  // per query tile, the listed key tiles: full, or partial with a per-element bitmask
  moba = 2,   // per query, the key blocks its selection bitmask names, and causal by closed form
};

struct FlashArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* o = nullptr;
  int batch = 1, heads = 1, kv_heads = 1, q_len = 0, kv_len = 0, head_dim = 0, value_dim = 0;
  float scale = 1.0f;  // softmax scale
  MaskMode mode = MaskMode::dense;
  int causal = 0;  // dense and moba: apply the causal closed form
  // tiles: the lowered mask (LoweredMask on the device); block_q/block_k must be the kernel's tile sizes
  int block_q = 0, block_k = 0, q_tiles = 0, per_head_maps = 0;
  const std::int32_t* row_start = nullptr;
  const TileEntry* entries = nullptr;
  const unsigned long long* bits = nullptr;
  // moba: keys per block and the selection, [batch·heads·q_len][sel_words] bits of blocks
  int moba_block = 0, sel_words = 0;
  const std::uint32_t* sel = nullptr;
  // fp16/bf16: the pipelined tensor-core kernel (cp.async, ldmatrix), or the plain one (method flash_sync)
  int pipelined = 1;
};

// Key tiles of the tensor-core kernels (the query tile is kFlashBlockQ for every path).
constexpr int kFlashBlockQ = 64;
constexpr int flash_mma_block_k(std::int64_t head_dim) { return head_dim == 256 ? 32 : 64; }
constexpr int kFlashFp32BlockK = 64;

struct MobaSetup {
  std::int64_t block = 0, topk = 0;
};

// The kernels' arguments for `p` under `mask` (the problem's own or a sparse method's composed mask),
// all but the device pointers: the closed form for full and causal masks, else the mask lowered to the
// kernel's tiles into `lowered` (which the caller uploads); with `moba` set, MoBA's selection mode (full or
// causal masks only). The device plan and the CPU emulation of the kernels both build their arguments here.
inline FlashArgs flash_args_for(const Problem& p, const Mask& mask, const MobaSetup* moba, bool pipelined,
                                LoweredMask& lowered) {
  FlashArgs a;
  a.pipelined = pipelined ? 1 : 0;
  a.batch = static_cast<int>(p.batch);
  a.heads = static_cast<int>(p.heads);
  a.kv_heads = static_cast<int>(p.kv_heads);
  a.q_len = static_cast<int>(p.q_len);
  a.kv_len = static_cast<int>(p.kv_len);
  a.head_dim = static_cast<int>(p.head_dim);
  a.value_dim = static_cast<int>(p.value_dim);
  a.scale = static_cast<float>(p.scale);
  if (moba) {
    if (!mask.is_full() && !mask.is_causal()) throw std::logic_error("moba on CUDA: full or causal masks only");
    a.mode = MaskMode::moba;
    a.causal = mask.is_causal() ? 1 : 0;
    a.moba_block = static_cast<int>(moba->block);
    const std::int64_t blocks = (p.kv_len + moba->block - 1) / moba->block;
    a.sel_words = static_cast<int>((blocks + 31) / 32);
  } else if (mask.is_full() || mask.is_causal()) {
    a.mode = MaskMode::dense;
    a.causal = mask.is_causal() ? 1 : 0;
  } else {
    a.mode = MaskMode::tiles;
    const std::int64_t block_k = p.dtype == Dtype::f32 ? kFlashFp32BlockK : flash_mma_block_k(p.head_dim);
    lowered = lower_mask(mask, kFlashBlockQ, block_k);
    a.block_q = static_cast<int>(lowered.block_q);
    a.block_k = static_cast<int>(lowered.block_k);
    a.q_tiles = static_cast<int>(lowered.q_tiles);
    a.per_head_maps = lowered.maps > 1 ? 1 : 0;
  }
  return a;
}

}  // namespace attnbench::cuda
