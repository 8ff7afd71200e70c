// Launches MoBA's gate on the GPU (kernels/cuda/moba_select_kernel.cuh): block mean keys, then each
// query's selection bitmask.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <stdexcept>

#include "kernels/cuda/elements.cuh"
#include "kernels/cuda/flash.cuh"
#include "kernels/cuda/shared_memory.cuh"
//
#include "kernels/cuda/moba_select_kernel.cuh"

namespace attnbench::cuda {
namespace {

using namespace moba_gate;

template <class T>
void launch_select(const FlashArgs& a, int topk, float* means, std::uint32_t* sel, cudaStream_t s) {
  const int blocks = (a.kv_len + a.moba_block - 1) / a.moba_block;
  if (blocks == 0 || a.q_len == 0 || a.batch * a.heads == 0) return;
  block_mean_keys_kernel<T><<<dim3(blocks, a.batch * a.kv_heads), 128, 0, s>>>(a, means);
  check_launch("block_mean_keys_kernel");
  const int smem = select_smem_bytes(a, blocks);
  auto* kernel = moba_select_kernel<T>;
  if (smem > 48 * 1024)
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "moba smem attribute");
  kernel<<<dim3((a.q_len + kWarps - 1) / kWarps, a.batch * a.heads), kWarps * 32, smem, s>>>(a, topk, blocks, means,
                                                                                             sel);
  check_launch("moba_select_kernel");
}

}  // namespace

void launch_moba_select(const FlashArgs& a, Dtype dtype, int topk, float* means, std::uint32_t* sel, cudaStream_t s) {
  if ((a.kv_len + a.moba_block - 1) / a.moba_block > kMobaMaxBlocks)
    throw std::logic_error("moba_select: more key blocks than the selection holds");
  switch (dtype) {
    case Dtype::f32:
      return launch_select<float>(a, topk, means, sel, s);
    case Dtype::f16:
      return launch_select<__half>(a, topk, means, sel, s);
    case Dtype::bf16:
      return launch_select<__nv_bfloat16>(a, topk, means, sel, s);
    default:
      throw std::logic_error("moba_select: fp32, fp16 or bf16 only");
  }
}

}  // namespace attnbench::cuda
