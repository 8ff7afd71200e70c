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
#include "kernels/cuda/flash_args.hpp"

namespace attnbench::cuda {

// fp16/bf16 inputs, head_dim == value_dim in {64, 128, 256}: tensor cores (mma.sync m16n8k16), fp32
// accumulation and online softmax, output in the input dtype; a.pipelined and a.warp_rows pick the variant.
void launch_flash_mma(const FlashArgs& a, Dtype dtype, cudaStream_t s);
// fp32 inputs, any head_dim and value_dim up to 256: CUDA cores, one warp per query.
void launch_flash_fp32(const FlashArgs& a, cudaStream_t s);
// MoBA: mean keys [batch·kv_heads·blocks·head_dim] (fp32), then each query's selection bitmask.
void launch_moba_select(const FlashArgs& a, Dtype dtype, int topk, float* means, std::uint32_t* sel, cudaStream_t s);

// Why the CUDA flash kernels cannot run `p` (empty when they can).
std::string flash_cuda_refusal(const std::string& method, const Problem& p);

// Plans the forward pass of `p` under `mask` (the problem's own or a sparse method's composed mask);
// with `moba` set, the mask must be full or causal and the keys are chosen per query by MoBA's gate.
class FlashDevicePlan final : public DevicePlan {
 public:
  // kernel: which tensor-core kernel runs fp16/bf16 (FlashKernel; {false, 16} is flash_sync's plain one).
  FlashDevicePlan(const Problem& p, std::shared_ptr<const Mask> mask, const MobaSetup* moba = nullptr,
                  FlashKernel kernel = {});
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
