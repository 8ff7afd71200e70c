// The CUDA flash forward pass shared by flash, sliding_window, sink_window and moba: the kernels'
// argument block, their launchers, and the device plan that lowers a mask once and runs the kernels.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "attnbench/method.hpp"
#include "kernels/cuda/block_lowering.hpp"
#include "kernels/cuda/cuda_plan.hpp"

namespace attnbench::cuda {

// How a kernel decides which (query, key) pairs are allowed.
enum class MaskMode : int {
  dense = 0,  // full, or causal by closed form (k <= q + kv_len - q_len)
  tiles = 1,  // per query tile, the listed key tiles: full, or partial with a per-element bitmask
  moba = 2,   // per query, the key blocks its selection bitmask names, and causal by closed form
};

struct FlashArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* o = nullptr;
  int batch = 1, heads = 1, kv_heads = 1, q_len = 0, kv_len = 0, head_dim = 0, value_dim = 0;
  float scale = 1.0f;  // softmax scale
  MaskMode mode = MaskMode::dense;
  int causal = 0;  // dense and moba: apply the causal closed form
  // tiles: the lowered mask (LoweredMask on the device); block_q/block_k must be the kernel's tile sizes
  int block_q = 0, block_k = 0, q_tiles = 0, per_head_maps = 0;
  const std::int32_t* row_start = nullptr;
  const TileEntry* entries = nullptr;
  const unsigned long long* bits = nullptr;
  // moba: keys per block and the selection, [batch·heads·q_len][sel_words] bits of blocks
  int moba_block = 0, sel_words = 0;
  const std::uint32_t* sel = nullptr;
  // fp16/bf16: the pipelined tensor-core kernel (cp.async, ldmatrix), or the plain one (method flash_sync)
  int pipelined = 1;
};

// Key tiles of the tensor-core kernels (the query tile is kFlashBlockQ for every path).
constexpr int kFlashBlockQ = 64;
inline int flash_mma_block_k(std::int64_t head_dim) { return head_dim == 256 ? 32 : 64; }
constexpr int kFlashFp32BlockK = 64;

// fp16/bf16 inputs, head_dim == value_dim in {64, 128, 256}: tensor cores (mma.sync m16n8k16), fp32
// accumulation and online softmax, output in the input dtype; a.pipelined picks the variant.
void launch_flash_mma(const FlashArgs& a, Dtype dtype, cudaStream_t s);
// fp32 inputs, any head_dim and value_dim up to 256: CUDA cores, one warp per query.
void launch_flash_fp32(const FlashArgs& a, cudaStream_t s);
// MoBA: mean keys [batch·kv_heads·blocks·head_dim] (fp32), then each query's selection bitmask.
void launch_moba_select(const FlashArgs& a, Dtype dtype, int topk, float* means, std::uint32_t* sel, cudaStream_t s);

// Why the CUDA flash kernels cannot run `p` (empty when they can).
std::string flash_cuda_refusal(const std::string& method, const Problem& p);

struct MobaSetup {
  std::int64_t block = 0, topk = 0;
};

// Plans the forward pass of `p` under `mask` (the problem's own or a sparse method's composed mask);
// with `moba` set, the mask must be full or causal and the keys are chosen per query by MoBA's gate.
class FlashDevicePlan final : public DevicePlan {
 public:
  // pipelined = false: the plain tensor-core kernel (method flash_sync), the pipelined one's same-run peer.
  FlashDevicePlan(const Problem& p, std::shared_ptr<const Mask> mask, const MobaSetup* moba = nullptr,
                  bool pipelined = true);
  void prepare(const Inputs& in) override;
  void run(const Inputs& in, Tensor& out) override;
  Counters counters() const override;

 private:
  std::shared_ptr<const Mask> mask_;
  FlashArgs args_;
  MobaSetup moba_;
  LoweredMask lowered_;
  DeviceBuffer row_start_, entries_, bits_, means_, sel_;
};

}  // namespace attnbench::cuda
