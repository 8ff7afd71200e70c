// The project's CUDA kernels run on the CPU under the warp emulator (tests/support/warp_emulator.hpp),
// launched the way their device plans launch them: the same argument builders (flash_args_for,
// split_args_for), the same choice of kernel instance, the same sequence of kernels. Plain C++: the
// emulator's CUDA macros stay inside emulated_kernels.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "attnbench/mask.hpp"
#include "attnbench/problem.hpp"
#include "kernels/cuda/flash_args.hpp"
#include "support/warp_emulator.hpp"

namespace attnbench::testing::emulated {

// How to run: the flash kernel's variant (fp16/bf16: pipelined = flash, else flash_sync) and rows per
// warp, when cp.async data lands, and the emulator's schedule.
struct Way {
  bool pipelined = true;
  emu::CopyLanding landing = emu::CopyLanding::at_wait;
  emu::Schedule schedule = emu::Schedule::round_robin;
  int warp_rows = 0;  // query rows per warp of the tensor-core kernel (0: the default for the head dim)
};

struct FlashRun {
  Tensor out;
  emu::LaunchStats stats;          // of the flash kernel's launch
  std::vector<std::uint32_t> sel;  // MoBA: the selection the gate computed (empty otherwise)
};

// FlashDevicePlan::run on the emulator: with `moba`, MoBA's gate (block mean keys, then the selection)
// unless `given_sel` supplies the selection; then the tensor-core kernel for fp16/bf16 or the CUDA-core
// kernel for fp32. The output is poisoned first.
FlashRun run_flash(const Problem& p, const Mask& mask, const Inputs& in, const Way& way,
                   const cuda::MobaSetup* moba = nullptr, const std::vector<std::uint32_t>* given_sel = nullptr);

// decode_splitk's device plan on the emulator with `splits` key splits (resolved, >= 1): the split kernel,
// then the merge kernel unless there is one split. The output and the partial buffers are poisoned first.
Tensor run_decode_splitk(const Problem& p, const Inputs& in, std::int64_t splits, emu::Schedule schedule);

// The dense baseline's device plan on the emulator: S = scale·Q·Kᵀ by its tiled GEMM kernel, the masked
// softmax kernel in place, O = P·V by the GEMM kernel.
Tensor run_dense(const Problem& p, const Inputs& in, emu::Schedule schedule);

// The cublas baseline's device plan with cuBLAS replaced by its documented semantics (column-major,
// strided batched, fp32 accumulation) applied to the very parameters the plan passes
// (baselines/cuda/cublas_calls.hpp), and the masked softmax kernel on the emulator between them.
Tensor run_cublas(const Problem& p, const Inputs& in, emu::Schedule schedule);

// The context-parallel methods' device kernels (kernels/distributed/block_attention_kernel.cuh) on the
// emulator, as a rank folds blocks of keys: the state reset, then per block of keys [starts[j],
// starts[j + 1]) (the last ends at kv_len) its K and V rows gathered by the row-copy kernel and folded in by
// the block-attention kernel, under the causal diagonal when the problem's mask is causal; then the output
// normalised. With `halves`, the blocks before and after kv_len / 2 go into two states that are merged as
// ranks merge them (maximum of the row maxima, the rescale kernel on both, sums added) before the
// normalisation. Full or causal masks only.
Tensor run_block_attention(const Problem& p, const Inputs& in, const std::vector<std::int64_t>& starts, bool halves);

}  // namespace attnbench::testing::emulated
