// The argument block of the CUDA flash kernels and their tile sizes, free of CUDA headers: the kernels
// include it, and so does the CPU warp emulator's test (tests/kernels/cuda_emulated/), which runs the
// same kernel source on the host.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

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
  // The kernel's query tile (fp16/bf16: 4 warps × warp_rows; fp32: 64) and, in the tiles mode, the
  // lowered mask (LoweredMask on the device) with its tile sizes, which must be the kernel's
  int block_q = 0, block_k = 0, q_tiles = 0, per_head_maps = 0;
  const std::int32_t* row_start = nullptr;
  const TileEntry* entries = nullptr;
  const unsigned long long* bits = nullptr;
  // moba: keys per block and the selection, [batch·heads·q_len][sel_words] bits of blocks
  int moba_block = 0, sel_words = 0;
  const std::uint32_t* sel = nullptr;
  // fp16/bf16: the pipelined tensor-core kernel (cp.async, ldmatrix), or the plain one (method flash_sync),
  // and the query rows each of its four warps owns (16 or 32)
  int pipelined = 1, warp_rows = 16;
};

// Which tensor-core kernel runs fp16/bf16: pipelined (flash) or plain (flash_sync), and the query rows of
// each warp. 16: a 64-query tile, each K and V fragment read from shared memory feeds one mma; 32: a
// 128-query tile (FlashAttention-2's 128 × 64 tile of four warps), each fragment feeds two, half the
// shared-memory reads per product and half the K/V tiles loaded per query, for twice the accumulators.
// 0 asks for the default: 32 for the pipelined kernel at head dims up to 128, else 16.
struct FlashKernel {
  bool pipelined = true;
  int warp_rows = 0;
};

// The query tile of the fp32 kernel's lowered masks and of the tensor-core kernel at 16 rows per warp.
constexpr int kFlashBlockQ = 64;
constexpr int kFlashWarps = 4;
// Key tiles of the tensor-core kernels: 32 where the accumulators are many (D = 256, and D = 128 at 32
// rows per warp: 128 output and 64 score accumulators at 64 keys left ptxas too few registers and it
// spilled on sm_80 or sm_90, whichever way it was written), else 64.
constexpr int flash_mma_block_k(std::int64_t head_dim, int warp_rows) {
  return head_dim == 256 || (head_dim == 128 && warp_rows == 32) ? 32 : 64;
}
constexpr int kFlashFp32BlockK = 64;

// Why the tensor-core kernel cannot take `warp_rows` at `head_dim` (empty when it can): 32 rows at
// D = 256 would hold 256 fp32 accumulators per thread, more than a thread's 255 registers; the plain
// kernel has 16 rows per warp only.
inline std::string flash_mma_warp_rows_refusal(std::int64_t head_dim, bool pipelined, std::int64_t warp_rows) {
  if (warp_rows != 0 && warp_rows != 16 && warp_rows != 32)
    return "warp_rows must be 0 (the default for the head dim), 16 or 32, not " + std::to_string(warp_rows);
  if (warp_rows == 32 && !pipelined) return "the plain tensor-core kernel (flash_sync) has 16 query rows per warp only";
  if (warp_rows == 32 && head_dim > 128)
    return "warp_rows 32 needs head_dim <= 128: at " + std::to_string(head_dim) +
           " the output accumulators of 32 rows alone would exceed a thread's 255 registers";
  return {};
}

// The query rows per warp that `kernel` resolves to at `head_dim` (after flash_mma_warp_rows_refusal).
constexpr int flash_mma_warp_rows(std::int64_t head_dim, FlashKernel kernel) {
  if (!kernel.pipelined) return 16;
  if (kernel.warp_rows != 0) return kernel.warp_rows;
  return head_dim <= 128 ? 32 : 16;
}

// Whether `a` was built for the tensor-core kernel's tiles (the query tile four warps' rows and, for a
// lowered mask, the key tile of the head dim and rows): what its launcher, and the emulated one, check.
inline bool flash_mma_tiles_match(const FlashArgs& a) {
  return a.block_q == kFlashWarps * a.warp_rows &&
         (a.mode != MaskMode::tiles || a.block_k == flash_mma_block_k(a.head_dim, a.warp_rows));
}

struct MobaSetup {
  std::int64_t block = 0, topk = 0;
};

// The kernels' arguments for `p` under `mask` (the problem's own or a sparse method's composed mask),
// all but the device pointers: the closed form for full and causal masks, else the mask lowered to the
// kernel's tiles into `lowered` (which the caller uploads); with `moba` set, MoBA's selection mode (full or
// causal masks only). The device plan and the CPU emulation of the kernels both build their arguments here.
inline FlashArgs flash_args_for(const Problem& p, const Mask& mask, const MobaSetup* moba, FlashKernel kernel,
                                LoweredMask& lowered) {
  if (const std::string why = flash_mma_warp_rows_refusal(p.head_dim, kernel.pipelined, kernel.warp_rows);
      p.dtype != Dtype::f32 && !why.empty())
    throw std::logic_error("flash on CUDA: " + why);
  FlashArgs a;
  a.pipelined = kernel.pipelined ? 1 : 0;
  a.warp_rows = flash_mma_warp_rows(p.head_dim, kernel);
  a.block_q = p.dtype == Dtype::f32 ? kFlashBlockQ : kFlashWarps * a.warp_rows;
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
    const std::int64_t block_k = p.dtype == Dtype::f32 ? kFlashFp32BlockK : flash_mma_block_k(p.head_dim, a.warp_rows);
    lowered = lower_mask(mask, a.block_q, block_k);
    a.block_k = static_cast<int>(lowered.block_k);
    a.q_tiles = static_cast<int>(lowered.q_tiles);
    a.per_head_maps = lowered.maps > 1 ? 1 : 0;
  }
  return a;
}

}  // namespace attnbench::cuda
