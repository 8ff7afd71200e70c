// Launches the tensor-core flash forward kernel (kernels/cuda/flash_mma_kernel.cuh) for fp16/bf16: the
// head dim, the mask mode, the variant (pipelined for flash, plain for flash_sync) and the query rows per
// warp (16 or 32, pipelined at D <= 128 only) pick the instance.
#include <stdexcept>
#include <string>

#include "kernels/cuda/flash.cuh"
#include "kernels/cuda/mma_primitives.cuh"
//
#include "kernels/cuda/flash_mma_kernel.cuh"

namespace attnbench::cuda {
namespace {

using namespace flash_mma;

template <class T, int D, int M, bool kSparse, bool kPipelined>
void launch(const FlashArgs& a, cudaStream_t s) {
  constexpr int BK = block_k<D, M>(), BQ = block_q<M>();
  static_assert(BK <= 64, "a key tile's bitmask is one 64-bit word per query");
  static_assert(BK % 16 == 0 && D % 16 == 0, "ldmatrix reads key and dim groups in pairs");
  constexpr int smem = smem_bytes<D, M, kPipelined>(static_cast<int>(sizeof(T)));
  auto* kernel = flash_mma_kernel<T, D, BK, M, kSparse, kPipelined>;
  static const bool configured = [&] {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "flash smem attribute");
    return true;
  }();
  (void)configured;
  const dim3 grid((a.q_len + BQ - 1) / BQ, a.batch * a.heads);
  if (grid.x == 0 || grid.y == 0) return;
  kernel<<<grid, kThreads, smem, s>>>(a);
  check_launch("flash_mma_kernel");
}

// 32 rows per warp: the pipelined kernel at D <= 128 (flash_args_for refuses the others).
template <class T, int D, bool kSparse, bool kPipelined>
void launch_rows(const FlashArgs& a, cudaStream_t s) {
  if constexpr (kPipelined && D <= 128) {
    if (a.warp_rows == 32) return launch<T, D, 2, kSparse, kPipelined>(a, s);
  }
  if (a.warp_rows != 16)
    throw std::logic_error("flash_mma: no kernel with " + std::to_string(a.warp_rows) + " rows per warp here");
  launch<T, D, 1, kSparse, kPipelined>(a, s);
}

template <class T, bool kSparse, bool kPipelined>
void launch_dim(const FlashArgs& a, cudaStream_t s) {
  switch (a.head_dim) {
    case 64:
      return launch_rows<T, 64, kSparse, kPipelined>(a, s);
    case 128:
      return launch_rows<T, 128, kSparse, kPipelined>(a, s);
    case 256:
      return launch_rows<T, 256, kSparse, kPipelined>(a, s);
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
  if (!flash_mma_tiles_match(a)) throw std::logic_error("flash_mma: the arguments were built for other tile sizes");
  if (dtype == Dtype::f16)
    launch_pipeline<__half>(a, s);
  else if (dtype == Dtype::bf16)
    launch_pipeline<__nv_bfloat16>(a, s);
  else
    throw std::logic_error("flash_mma: fp16 or bf16 only");
}

}  // namespace attnbench::cuda
