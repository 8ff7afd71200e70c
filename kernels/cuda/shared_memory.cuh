// How the kernel headers (kernels/cuda/*_kernel.cuh) declare shared memory, so that the same source
// compiles for the device and for the CPU warp emulator (tests/support/warp_emulator_cuda.hpp defines
// both macros over the emulator's per-block shared memory). TYPE may be an array type: float[16][64].
#pragma once

#define ATTNBENCH_SHARED(type, name) \
  using name##_shared_type = type;   \
  __shared__ __align__(16) name##_shared_type name
#define ATTNBENCH_DYNAMIC_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
