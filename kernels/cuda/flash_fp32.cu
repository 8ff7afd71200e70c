// Launches the fp32 CUDA-core flash kernel (kernels/cuda/flash_fp32_kernel.cuh).
#include <stdexcept>

#include "kernels/cuda/flash.cuh"
//
#include "kernels/cuda/flash_fp32_kernel.cuh"

namespace attnbench::cuda {

using flash_fp32::flash_fp32_kernel;
using flash_fp32::kMaxPerLane;
using flash_fp32::kWarps;

void launch_flash_fp32(const FlashArgs& a, cudaStream_t s) {
  if (a.head_dim > 32 * kMaxPerLane || a.value_dim > 32 * kMaxPerLane)
    throw std::logic_error("flash_fp32: head_dim and value_dim must not exceed 256");
  const dim3 grid((a.q_len + kWarps - 1) / kWarps, a.batch * a.heads);
  if (grid.x == 0 || grid.y == 0) return;
  flash_fp32_kernel<<<grid, kWarps * 32, 0, s>>>(a);
  check_launch("flash_fp32_kernel");
}

}  // namespace attnbench::cuda
