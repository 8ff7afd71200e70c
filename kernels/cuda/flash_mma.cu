// Launches the tensor-core flash forward kernel (kernels/cuda/flash_mma_kernel.cuh) for fp16/bf16: the
// head dim, the mask mode and the variant (pipelined for flash, plain for flash_sync) pick the instance.
#include <stdexcept>
#include <string>

#include "kernels/cuda/flash.cuh"
#include "kernels/cuda/mma_primitives.cuh"
//
#include "kernels/cuda/flash_mma_kernel.cuh"

namespace attnbench::cuda {
namespace {

using namespace flash_mma;

template <class T, int D, bool kSparse, bool kPipelined>
void launch(const FlashArgs& a, cudaStream_t s) {
  constexpr int BK = block_k<D>();
  static_assert(BK <= 64, "a key tile's bitmask is one 64-bit word per query");
  static_assert(BK % 16 == 0 && D % 16 == 0, "ldmatrix reads key and dim groups in pairs");
  constexpr int smem = smem_bytes<D, kPipelined>(static_cast<int>(sizeof(T)));
  auto* kernel = flash_mma_kernel<T, D, BK, kSparse, kPipelined>;
  static const bool configured = [&] {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "flash smem attribute");
    return true;
  }();
  (void)configured;
  const dim3 grid((a.q_len + kFlashBlockQ - 1) / kFlashBlockQ, a.batch * a.heads);
  if (grid.x == 0 || grid.y == 0) return;
  kernel<<<grid, kThreads, smem, s>>>(a);
  check_launch("flash_mma_kernel");
}

template <class T, bool kSparse, bool kPipelined>
void launch_dim(const FlashArgs& a, cudaStream_t s) {
  switch (a.head_dim) {
    case 64:
      return launch<T, 64, kSparse, kPipelined>(a, s);
    case 128:
      return launch<T, 128, kSparse, kPipelined>(a, s);
    case 256:
      return launch<T, 256, kSparse, kPipelined>(a, s);
    default:
      throw std::logic_error("flash_mma: head_dim " + std::to_string(a.head_dim) + " has no kernel");
  }
}

template <class T, bool kPipelined>
void launch_type(const FlashArgs& a, cudaStream_t s) {
  if (a.mode == MaskMode::dense)
    launch_dim<T, false, kPipelined>(a, s);
  else
    launch_dim<T, true, kPipelined>(a, s);
}

template <class T>
void launch_pipeline(const FlashArgs& a, cudaStream_t s) {
  if (a.pipelined)
    launch_type<T, true>(a, s);
  else
    launch_type<T, false>(a, s);
}

}  // namespace

void launch_flash_mma(const FlashArgs& a, Dtype dtype, cudaStream_t s) {
  if (a.head_dim != a.value_dim) throw std::logic_error("flash_mma: value_dim must equal head_dim");
  if (a.mode == MaskMode::tiles && (a.block_q != kFlashBlockQ || a.block_k != flash_mma_block_k(a.head_dim)))
    throw std::logic_error("flash_mma: the mask was lowered for other tile sizes");
  if (dtype == Dtype::f16)
    launch_pipeline<__half>(a, s);
  else if (dtype == Dtype::bf16)
    launch_pipeline<__nv_bfloat16>(a, s);
  else
    throw std::logic_error("flash_mma: fp16 or bf16 only");
}

}  // namespace attnbench::cuda
