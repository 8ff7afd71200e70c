// Method "moba" on CUDA: block mean keys and each query's selection on the device (moba_select.cu),
// then the flash kernels over the union of a query tile's selected blocks, each element masked by its
// own query's selection and causality: the CPU method's definition (kernels/cpu/moba.cpp).
#include <string>

#include "kernels/cuda/flash.cuh"

namespace attnbench::cuda {
namespace {

class MobaCuda final : public DeviceImpl {
 public:
  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (d.is_cpu()) return Support::no("moba's CUDA implementation runs on CUDA devices only");
    if (const std::string why = flash_cuda_refusal("moba", p); !why.empty()) return Support::no(why);
    // The CPU method's refusals of the definition (full or causal masks only), asked for fp32 inputs.
    if (const Method* m = MethodRegistry::instance().find("moba")) {
      Problem as_fp32 = p;
      as_fp32.dtype = Dtype::f32;
      if (Support s = m->supports(as_fp32, params, Device{}); !s) return s;
    }
    const std::int64_t block = params.integer("block"), blocks = (p.kv_len + block - 1) / block;
    if (blocks > kMobaMaxBlocks)
      return Support::no("moba on CUDA keeps at most " + std::to_string(kMobaMaxBlocks) +
                         " key blocks per query, not " + std::to_string(blocks) + "; raise block to at least " +
                         std::to_string((p.kv_len + kMobaMaxBlocks - 1) / kMobaMaxBlocks));
    return Support::yes();
  }
  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    const MobaSetup setup{params.integer("block"), params.integer("topk")};
    return std::make_unique<FlashDevicePlan>(p, p.mask, &setup);
  }
};

ATTNBENCH_REGISTER_CUDA_IMPL("moba", MobaCuda);

}  // namespace
}  // namespace attnbench::cuda
