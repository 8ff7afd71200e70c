// The CUDA names our kernels use, defined over the CPU warp emulator (warp_emulator.hpp), so a kernel
// header (kernels/cuda/*_kernel.cuh) compiles as host C++ and runs under emu::launch. Include it after
// every other header of the translation unit and right before the kernel header: it defines macros
// (threadIdx, __global__, ...) that would break headers included after it.
//
// The primitives of kernels/cuda/mma_primitives.cuh and the conversions of kernels/cuda/elements.cuh are
// mirrored in namespace attnbench::cuda with the same names and signatures; emu::Half and emu::Bf16
// stand for __half and __nv_bfloat16.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "attnbench/dtype.hpp"
#include "support/warp_emulator.hpp"

#define __global__ static  // the device objects define the same kernels with external linkage
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define threadIdx (::attnbench::emu::thread_index())
#define blockIdx (::attnbench::emu::block_index())
#define ATTNBENCH_DYNAMIC_SMEM(name) unsigned char* name = ::attnbench::emu::dynamic_shared()
#define ATTNBENCH_SHARED(type, name) \
  using name##_shared_type = type;   \
  name##_shared_type& name =         \
      *static_cast<name##_shared_type*>(::attnbench::emu::static_shared(__FILE__, __LINE__, sizeof(type)))
#define __restrict__
#define blockDim (::attnbench::emu::block_dim())
#define gridDim (::attnbench::emu::grid_dim())

struct uint4 {
  unsigned x, y, z, w;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline void __syncthreads() { ::attnbench::emu::sync_threads(); }
inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
  return std::bit_cast<float>(::attnbench::emu::shfl_xor(mask, std::bit_cast<std::uint32_t>(v), lane_mask));
}
inline int __shfl_xor_sync(unsigned mask, int v, int lane_mask) {
  return static_cast<int>(::attnbench::emu::shfl_xor(mask, static_cast<std::uint32_t>(v), lane_mask));
}
inline float __shfl_sync(unsigned mask, float v, int src_lane) {
  return std::bit_cast<float>(::attnbench::emu::shfl(mask, std::bit_cast<std::uint32_t>(v), src_lane));
}
template <class T>
T __ldg(const T* p) {
  ::attnbench::emu::check_global(p, sizeof(T), "__ldg");
  return *p;
}
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::attnbench::emu::sync_warp(mask); }
// CUDA's integer min and max; both operands of one type, as the kernels write them.
template <class T>
T min(T a, T b) {
  return a < b ? a : b;
}
template <class T>
T max(T a, T b) {
  return a > b ? a : b;
}

namespace attnbench::cuda {

// kernels/cuda/elements.cuh
inline float to_float(float x) { return x; }
inline float to_float(emu::Half x) { return fp16_to_float(x.bits); }
inline float to_float(emu::Bf16 x) { return bf16_to_float(x.bits); }
template <class T>
T from_float(float x);
template <>
inline float from_float<float>(float x) {
  return x;
}
template <>
inline emu::Half from_float<emu::Half>(float x) {
  return {float_to_fp16(x)};
}
template <>
inline emu::Bf16 from_float<emu::Bf16>(float x) {
  return {float_to_bf16(x)};
}

// The tensor-core kernel's Mma<T> for the emulator's storage types (emu::Half for __half, emu::Bf16 for
// __nv_bfloat16).
template <class T>
struct Mma {
  static_assert(std::is_same_v<T, emu::Half> || std::is_same_v<T, emu::Bf16>, "mma.sync takes fp16 or bf16");
  static constexpr emu::MmaType kType = std::is_same_v<T, emu::Half> ? emu::MmaType::f16 : emu::MmaType::bf16;
  static unsigned pack(float lo, float hi) {
    return static_cast<unsigned>(from_float<T>(lo).bits) | (static_cast<unsigned>(from_float<T>(hi).bits) << 16);
  }
  static void run(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    emu::mma_m16n8k16(kType, c, a, b0, b1);
  }
};

inline void cp_async16(void* dst, const void* src, bool valid) { emu::cp_async16(dst, src, valid); }
inline void cp_async_commit() { emu::cp_async_commit(); }
template <int N>
inline void cp_async_wait() {
  emu::cp_async_wait(N);
}
inline void ldmatrix_x4(unsigned (&r)[4], const void* row) { emu::ldmatrix_x4(r, row, false); }
inline void ldmatrix_x4_trans(unsigned (&r)[4], const void* row) { emu::ldmatrix_x4(r, row, true); }

}  // namespace attnbench::cuda
