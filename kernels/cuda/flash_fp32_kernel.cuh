// The fp32 path of the CUDA flash methods, on CUDA cores: one warp per query, the lanes along the head
// dim, an online softmax key by key in fp32. Simple on purpose: the reference the tensor-core path and
// the fp32 checks (rel-L2 1e-5 against the float64 oracle) lean on, under every mask mode.
//
// Included by kernels/cuda/flash_fp32.cu and by the CPU warp emulator's test (tests/kernels/cuda_emulated/).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/cuda/flash_args.hpp"

namespace attnbench::cuda::flash_fp32 {

constexpr int kWarps = 4;
constexpr int kMaxPerLane = 8;  // head_dim and value_dim up to 256

struct RowState {
  float max = -INFINITY, sum = 0.0f;
  float acc[kMaxPerLane] = {};
};

__device__ inline float warp_sum(float x) {
  for (int m = 16; m > 0; m >>= 1) x += __shfl_xor_sync(0xffffffffu, x, m);
  return __shfl_sync(0xffffffffu, x, 0);
}

__device__ inline void visit(const FlashArgs& a, const float (&qreg)[kMaxPerLane], const float* kh, const float* vh,
                             int key, int lane, RowState& st) {
  float dot = 0.0f;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < a.head_dim) dot += qreg[i] * kh[static_cast<long long>(key) * a.head_dim + d];
  }
  const float s = warp_sum(dot);
  float p = 1.0f, corr = 1.0f;
  if (s > st.max) {
    corr = expf(st.max - s);  // 0 for the first key (max = -inf)
    st.max = s;
  } else {
    p = expf(s - st.max);
  }
  st.sum = st.sum * corr + p;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int c = lane + 32 * i;
    if (c < a.value_dim) st.acc[i] = st.acc[i] * corr + p * vh[static_cast<long long>(key) * a.value_dim + c];
  }
}

__global__ void __launch_bounds__(kWarps * 32) flash_fp32_kernel(const FlashArgs a) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int q = blockIdx.x * kWarps + warp;
  if (q >= a.q_len) return;  // whole warps leave; no block-wide barrier follows
  const long long bh = blockIdx.y;
  const int b = static_cast<int>(bh / a.heads), h = static_cast<int>(bh % a.heads);
  const int kvh = h / (a.heads / a.kv_heads);
  const long long kv = static_cast<long long>(b) * a.kv_heads + kvh;
  const float* qrow = static_cast<const float*>(a.q) + (bh * a.q_len + q) * a.head_dim;
  const float* kh = static_cast<const float*>(a.k) + kv * a.kv_len * a.head_dim;
  const float* vh = static_cast<const float*>(a.v) + kv * a.kv_len * a.value_dim;
  float* orow = static_cast<float*>(a.o) + (bh * a.q_len + q) * a.value_dim;

  float qreg[kMaxPerLane];
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + 32 * i;
    qreg[i] = d < a.head_dim ? qrow[d] * a.scale : 0.0f;
  }
  RowState st;
  const int pos = q + a.kv_len - a.q_len;
  // Keys [0, end) under the dense and moba modes' closed form.
  const int end = a.causal ? (pos < 0 ? 0 : min(a.kv_len, pos + 1)) : a.kv_len;

  if (a.mode == MaskMode::dense) {
    for (int key = 0; key < end; ++key) visit(a, qreg, kh, vh, key, lane, st);
  } else if (a.mode == MaskMode::tiles) {
    const int qt = q / a.block_q;
    const long long row = (a.per_head_maps ? bh : 0) * a.q_tiles + qt;
    for (int i = a.row_start[row]; i < a.row_start[row + 1]; ++i) {
      const TileEntry e = a.entries[i];
      const int k0 = e.k_tile * a.block_k;
      const unsigned long long word =
          e.bits < 0 ? ~0ull : a.bits[static_cast<long long>(e.bits) * a.block_q + (q - qt * a.block_q)];
      for (int c = 0; c < a.block_k && k0 + c < a.kv_len; ++c)
        if ((word >> c) & 1ull) visit(a, qreg, kh, vh, k0 + c, lane, st);
    }
  } else {
    const std::uint32_t* sel = a.sel + (bh * a.q_len + q) * a.sel_words;
    const int blocks = (end + a.moba_block - 1) / a.moba_block;
    for (int blk = 0; blk < blocks; ++blk) {
      if (!((sel[blk >> 5] >> (blk & 31)) & 1u)) continue;
      const int k1 = min(end, (blk + 1) * a.moba_block);
      for (int key = blk * a.moba_block; key < k1; ++key) visit(a, qreg, kh, vh, key, lane, st);
    }
  }

  const float inv = st.sum > 0.0f ? 1.0f / st.sum : 0.0f;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int c = lane + 32 * i;
    if (c < a.value_dim) orow[c] = st.acc[i] * inv;
  }
}

}  // namespace attnbench::cuda::flash_fp32
