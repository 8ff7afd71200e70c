// Element types on the device: widening to fp32 and rounding back, for fp32, fp16 and bf16 storage. One
// definition for every CUDA kernel of the project (kernels/cuda, kernels/distributed, baselines/cuda).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace attnbench::cuda {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// Rounds to nearest even.
template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

}  // namespace attnbench::cuda
