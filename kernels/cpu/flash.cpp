// Method "flash": exact attention by the tiled online-softmax kernel in flash_core, O(L) memory.
#include <omp.h>

#include "attnbench/method.hpp"
#include "kernels/cpu/flash_core.hpp"

namespace attnbench {
namespace {

class FlashPlan final : public Plan {
 public:
  FlashPlan(const Problem& p, kernels::FlashConfig cfg)
      : problem_(p), cfg_(std::move(cfg)), workspace_(p, cfg_, omp_get_max_threads()) {}
  void run(const Inputs& in, Tensor& out) override { kernels::flash_forward_cpu(problem_, in, out, cfg_, workspace_); }

 private:
  Problem problem_;
  kernels::FlashConfig cfg_;
  kernels::FlashWorkspace workspace_;
};

class Flash final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "flash";
    m.family = Family::exact;
    m.summary = "exact attention, tiled with an online softmax: no L×L matrix, O(L) memory (CPU, fp32/bf16)";
    m.reference = "Dao et al., FlashAttention (2022); Dao, FlashAttention-2 (2023)";
    m.params = {ParamSpec::integer("block_q", 64, 8, 512, "queries per tile (one work item per query tile)"),
                ParamSpec::integer("block_k", 128, 16, 1024, "keys per tile streamed through the online softmax"),
                ParamSpec::integer("warp_rows", 0, 0, 32,
                                   "CUDA tensor-core kernel only (fp16/bf16; the CPU ignores it): query rows per warp, "
                                   "16 (64-query tiles) or 32 (128-query tiles, head_dim <= 128); 0: 32 where "
                                   "head_dim <= 128, else 16")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;  // CPU backend, heads % kv_heads
    if (p.dtype != Dtype::f32 && p.dtype != Dtype::bf16)
      return Support::no("flash computes in fp32 from fp32 or bf16 inputs, not " + std::string(to_string(p.dtype)));
    return Support::yes();
  }
  // flops() and bytes(): Method's defaults, exact attention's counts.

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<FlashPlan>(
        p, kernels::make_flash_config(p, params.integer("block_q"), params.integer("block_k")));
  }
};

ATTNBENCH_REGISTER_METHOD(Flash);

}  // namespace
}  // namespace attnbench
