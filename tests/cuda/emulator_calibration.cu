// One warp on the device: the tensor-core kernel's own primitives (mma_primitives.cuh) on fixed operands.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "emulator_calibration.hpp"
#include "kernels/cuda/cuda_plan.hpp"
#include "kernels/cuda/mma_primitives.cuh"

namespace attnbench::testing {
namespace {

template <class T>
__global__ void warp_registers_kernel(const std::uint16_t* a, const std::uint16_t* b, float c0, float c1, float c2,
                                      float c3, WarpRegisters* out) {
  __shared__ __align__(16) std::uint16_t sa[16 * 16];
  __shared__ __align__(16) std::uint16_t sb[16 * 8];
  const int lane = threadIdx.x;
  for (int i = lane; i < 16 * 16; i += 32) sa[i] = a[i];
  for (int i = lane; i < 16 * 8; i += 32) sb[i] = b[i];
  __syncwarp();
  unsigned af[4], bf[4];
  // A: matrices (rows 0-7, cols 0-7), (rows 8-15, cols 0-7), (rows 0-7, cols 8-15), (rows 8-15, cols 8-15).
  cuda::ldmatrix_x4(af, sa + (lane % 16) * 16 + (lane / 16) * 8);
  // B transposed: matrices of k rows 0-7 and 8-15, twice.
  cuda::ldmatrix_x4_trans(bf, sb + (lane % 16) * 8);
  float c[4] = {c0, c1, c2, c3};
  cuda::Mma<T>::run(c, af, bf[0], bf[1]);
  for (int e = 0; e < 4; ++e) {
    out->a[lane][e] = af[e];
    out->b[lane][e] = bf[e];
    out->d[lane][e] = c[e];
  }
}

}  // namespace

WarpRegisters warp_registers_on_device(const std::uint16_t (&a)[16][16], const std::uint16_t (&b)[16][8], bool bf16) {
  cuda::DeviceBuffer da(sizeof(a)), db(sizeof(b)), dout(sizeof(WarpRegisters));
  cuda::check(cudaMemcpy(da.data(), a, sizeof(a), cudaMemcpyHostToDevice), "calibration upload");
  cuda::check(cudaMemcpy(db.data(), b, sizeof(b), cudaMemcpyHostToDevice), "calibration upload");
  const float* c = kWarpRegistersC;
  auto* kernel = bf16 ? warp_registers_kernel<__nv_bfloat16> : warp_registers_kernel<__half>;
  kernel<<<1, 32>>>(da.as<const std::uint16_t>(), db.as<const std::uint16_t>(), c[0], c[1], c[2], c[3],
                    dout.as<WarpRegisters>());
  cuda::check_launch("warp_registers_kernel");
  WarpRegisters out;
  cuda::check(cudaMemcpy(&out, dout.data(), sizeof(out), cudaMemcpyDeviceToHost), "calibration download");
  return out;
}

}  // namespace attnbench::testing
