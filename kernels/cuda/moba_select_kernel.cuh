// MoBA's gate on the GPU: the mean key of every block, then per query the bitmask of the blocks it
// attends to (its own block plus the best topk − 1 earlier ones by q·mean, ties to the lower block), the
// same rule as kernels/cpu/block_select_core.hpp. The flash kernels then mask by these bits.
//
// Included by kernels/cuda/moba_select.cu (after elements.cuh and shared_memory.cuh) and by the CPU warp
// emulator's test (tests/kernels/cuda_emulated/).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/cuda/block_lowering.hpp"
#include "kernels/cuda/flash_args.hpp"

namespace attnbench::cuda::moba_gate {

constexpr int kWarps = 4;

template <class T>
__device__ __forceinline__ float widen(T x) {
  return to_float(x);  // kernels/cuda/elements.cuh
}

// means[(bkv·blocks + blk)·D + d]: keys summed in order, then times 1/count, as the CPU sums them.
template <class T>
__global__ void block_mean_keys_kernel(const FlashArgs a, float* means) {
  const int blk = blockIdx.x, blocks = gridDim.x;
  const long long bkv = blockIdx.y;
  const int D = a.head_dim, Lk = a.kv_len;
  const int k0 = blk * a.moba_block, k1 = min(k0 + a.moba_block, Lk);
  const T* kh = static_cast<const T*>(a.k) + bkv * Lk * D;
  const float inv = 1.0f / static_cast<float>(k1 - k0);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float sum = 0.0f;
    for (int j = k0; j < k1; ++j) sum += widen(kh[static_cast<long long>(j) * D + d]);
    means[(bkv * blocks + blk) * D + d] = sum * inv;
  }
}

// Dynamic shared memory of moba_select_kernel.
inline int select_smem_bytes(const FlashArgs& a, int blocks) {
  return kWarps * (a.head_dim + blocks + a.sel_words) * static_cast<int>(sizeof(float));
}

// One warp per query; shared memory per warp: the scaled query [D], the block scores [blocks] and the
// selection bits [words].
template <class T>
__global__ void __launch_bounds__(kWarps * 32)
    moba_select_kernel(const FlashArgs a, int topk, int blocks, const float* means, std::uint32_t* sel) {
  ATTNBENCH_DYNAMIC_SMEM(smem_raw);
  float* smem = reinterpret_cast<float*>(smem_raw);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int D = a.head_dim, words = a.sel_words;
  float* qf = smem + warp * (D + blocks + words);
  float* score = qf + D;
  std::uint32_t* bits = reinterpret_cast<std::uint32_t*>(score + blocks);

  const int q = blockIdx.x * kWarps + warp;
  if (q >= a.q_len) return;  // whole warps leave; only warp-level synchronisation follows
  const long long bh = blockIdx.y;
  const int b = static_cast<int>(bh / a.heads), h = static_cast<int>(bh % a.heads);
  const int kvh = h / (a.heads / a.kv_heads);
  const float* mh = means + (static_cast<long long>(b) * a.kv_heads + kvh) * blocks * D;

  const MobaRow g = moba_row(q, a.q_len, a.kv_len, a.causal != 0, a.moba_block, topk);
  const int own = static_cast<int>(g.own), cand_end = static_cast<int>(g.candidate_end);
  for (int w = lane; w < words; w += 32) {
    std::uint32_t u = 0;
    if (g.visible_end > 0 && g.budget >= g.candidates)  // every candidate wins: nothing to score
      for (int i = 0; i < 32; ++i) {
        const int blk = w * 32 + i;
        if (blk < cand_end && blk != own) u |= 1u << i;
      }
    bits[w] = u;
  }
  __syncwarp();

  if (g.visible_end > 0 && g.budget < g.candidates) {
    const T* qrow = static_cast<const T*>(a.q) + (bh * a.q_len + q) * D;
    for (int d = lane; d < D; d += 32) qf[d] = widen(qrow[d]) * a.scale;
    __syncwarp();
    for (int blk = lane; blk < cand_end; blk += 32) {
      const float* mean = mh + static_cast<long long>(blk) * D;
      float s = 0.0f;
      for (int d = 0; d < D; ++d) s += qf[d] * mean[d];
      score[blk] = s;
    }
    __syncwarp();
    for (long long round = 0; round < g.budget; ++round) {
      float best = -INFINITY;
      int best_blk = 0x7fffffff;
      for (int blk = lane; blk < cand_end; blk += 32) {
        if (blk == own || ((bits[blk >> 5] >> (blk & 31)) & 1u)) continue;
        const float s = score[blk];
        if (s > best || (s == best && blk < best_blk)) {
          best = s;
          best_blk = blk;
        }
      }
      for (int m = 16; m > 0; m >>= 1) {
        const float os = __shfl_xor_sync(0xffffffffu, best, m);
        const int ob = __shfl_xor_sync(0xffffffffu, best_blk, m);
        if (os > best || (os == best && ob < best_blk)) {
          best = os;
          best_blk = ob;
        }
      }
      if (lane == 0 && best_blk != 0x7fffffff) bits[best_blk >> 5] |= 1u << (best_blk & 31);
      __syncwarp();
    }
  }
  if (lane == 0 && own >= 0 && g.visible_end > 0) bits[own >> 5] |= 1u << (own & 31);
  __syncwarp();
  for (int w = lane; w < words; w += 32) sel[(bh * a.q_len + q) * words + w] = bits[w];
}

}  // namespace attnbench::cuda::moba_gate
