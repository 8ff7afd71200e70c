// The device kernels the CUDA context-parallel methods share: block attention into an online-softmax
// state (one warp per query row, lanes along the head dim, key by key in fp32 as flash_fp32 does), the
// state's reset / rescale / normalise, and a row copy. Included by kernels/distributed/block_attention.cu
// (after elements.cuh) and by the CPU warp emulator's test (tests/kernels/cuda_emulated/).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/distributed/block_args.hpp"

namespace attnbench::kernels::distributed::gpu::block_kernels {

constexpr int kWarps = 4;
constexpr int kMaxPerLane = kMaxDim / 32;
constexpr int kThreads = 256;
constexpr float kLog2e = 1.4426950408889634f;
constexpr unsigned kMaxGridY = 65535;

template <class T>
__device__ __forceinline__ float widen(T x) {
  return ::attnbench::cuda::to_float(x);  // kernels/cuda/elements.cuh
}
template <class T>
__device__ __forceinline__ T narrow(float x) {
  return ::attnbench::cuda::from_float<T>(x);
}

__device__ inline float warp_sum(float x) {
  for (int m = 16; m > 0; m >>= 1) x += __shfl_xor_sync(0xffffffffu, x, m);
  return x;  // every lane holds the sum after the butterfly
}

// grid.x: query rows in groups of kWarps; grid.y: (batch, head) pairs, strided when more than 65535.
template <class T>
__global__ void __launch_bounds__(kWarps * 32)
    block_attention_kernel(const BlockArgs a, float* __restrict__ smax, float* __restrict__ ssum,
                           float* __restrict__ sacc) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long long i = static_cast<long long>(blockIdx.x) * kWarps + warp;
  if (i >= a.q_rows) return;  // whole warps leave; no barrier follows
  // Keys [0, end) of the block are visible to query i.
  long long end = a.kv_rows;
  if (a.diagonal != kNoMask) end = i + a.diagonal + 1 < 0 ? 0 : (i + a.diagonal + 1 < end ? i + a.diagonal + 1 : end);
  if (end <= 0) return;  // the state of this row is left as it was
  const long long group = a.heads / a.kv_heads;
  const float qscale = a.scale * kLog2e;
  for (long long bh = blockIdx.y; bh < a.batch * a.heads; bh += gridDim.y) {
    const long long b = bh / a.heads, h = bh % a.heads;
    const long long kv = b * a.kv_heads + h / group;
    const T* qrow = static_cast<const T*>(a.q) + (bh * a.q_rows + i) * a.head_dim;
    const T* kh = static_cast<const T*>(a.k) + kv * a.kv_rows * a.head_dim;
    const T* vh = static_cast<const T*>(a.v) + kv * a.kv_rows * a.value_dim;
    const long long row = bh * a.q_rows + i;

    float qreg[kMaxPerLane], acc[kMaxPerLane];
#pragma unroll
    for (int r = 0; r < kMaxPerLane; ++r) {
      const long long d = lane + 32 * r;
      qreg[r] = d < a.head_dim ? widen(qrow[d]) * qscale : 0.0f;
      acc[r] = d < a.value_dim ? sacc[row * a.value_dim + d] : 0.0f;
    }
    float m = smax[row], l = ssum[row];
    for (long long key = 0; key < end; ++key) {
      const T* krow = kh + key * a.head_dim;
      float dot = 0.0f;
#pragma unroll
      for (int r = 0; r < kMaxPerLane; ++r) {
        const long long d = lane + 32 * r;
        if (d < a.head_dim) dot += qreg[r] * widen(krow[d]);
      }
      const float s = warp_sum(dot);
      float p = 1.0f, corr = 1.0f;
      if (s > m) {
        corr = exp2f(m - s);  // 0 while nothing was seen (m = −inf)
        m = s;
      } else {
        p = exp2f(s - m);
      }
      l = l * corr + p;
      const T* vrow = vh + key * a.value_dim;
#pragma unroll
      for (int r = 0; r < kMaxPerLane; ++r) {
        const long long c = lane + 32 * r;
        if (c < a.value_dim) acc[r] = acc[r] * corr + p * widen(vrow[c]);
      }
    }
#pragma unroll
    for (int r = 0; r < kMaxPerLane; ++r) {
      const long long c = lane + 32 * r;
      if (c < a.value_dim) sacc[row * a.value_dim + c] = acc[r];
    }
    if (lane == 0) {
      smax[row] = m;
      ssum[row] = l;
    }
  }
}

__global__ void reset_kernel(float* buf, long long rows, long long total) {
  for (long long x = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; x < total;
       x += static_cast<long long>(gridDim.x) * blockDim.x)
    buf[x] = x < rows ? -INFINITY : 0.0f;
}

__global__ void rescale_kernel(const float* __restrict__ smax, float* __restrict__ ssum, float* __restrict__ sacc,
                               const float* __restrict__ gmax, long long rows, long long dv) {
  const long long total = rows * (dv + 1);
  for (long long x = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; x < total;
       x += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = x / (dv + 1), c = x % (dv + 1);
    const float m = smax[r], g = gmax[r];
    const float w = (m == -INFINITY || g == -INFINITY) ? 0.0f : exp2f(m - g);
    if (c == dv)
      ssum[r] *= w;
    else
      sacc[r * dv + c] *= w;
  }
}

template <class T>
__global__ void normalise_kernel(const float* __restrict__ ssum, const float* __restrict__ sacc, T* __restrict__ out,
                                 long long rows, long long dv) {
  const long long total = rows * dv;
  for (long long x = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; x < total;
       x += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float l = ssum[x / dv];
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    out[x] = narrow<T>(sacc[x] * inv);
  }
}

// Rows in units U (row_units of them per row).
template <class U>
__global__ void copy_rows_kernel(const U* __restrict__ src, U* __restrict__ dst, long long bh, long long len,
                                 long long row_units, long long first, long long stride, long long rows, bool scatter) {
  const long long total = bh * rows * row_units;
  for (long long x = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; x < total;
       x += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long u = x % row_units, shard_row = x / row_units;
    const long long b = shard_row / rows, i = shard_row % rows;
    const long long tensor = (b * len + first + i * stride) * row_units + u;
    if (scatter)
      dst[tensor] = src[x];
    else
      dst[x] = src[tensor];
  }
}

inline unsigned grid_for(long long total) {
  const long long blocks = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::clamp<long long>(blocks, 1, 65535LL * 16));
}

}  // namespace attnbench::kernels::distributed::gpu::block_kernels
