// Methods "sliding_window" and "sink_window" on CUDA: the flash kernels over the block maps and bitmasks
// of the same composed mask the CPU methods compute (kernels/cpu/sparse_static.hpp), so that both
// backends compute one function; refusals are the CPU method's own, then the CUDA kernels'.
#include <string>

#include "kernels/cpu/sparse_static.hpp"
#include "kernels/cuda/flash.cuh"

namespace attnbench::cuda {
namespace {

// Whether the CPU method `name` accepts the problem's shape and parameters, asked as if its inputs were
// fp32 on the CPU: its checks of the pattern's definition (no cross attention, q_len <= kv_len, window
// sizes) hold for every backend, while dtype and head dim are the CUDA kernels' to judge.
Support cpu_definition_supports(const std::string& name, const Problem& p, const Params& params) {
  const Method* m = MethodRegistry::instance().find(name);
  if (!m) return Support::no("method '" + name + "' is not registered");
  Problem as_fp32 = p;
  as_fp32.dtype = Dtype::f32;
  return m->supports(as_fp32, params, Device{});
}

template <bool kPatternCausalAlways>
class StaticSparseCuda : public DeviceImpl {
 public:
  explicit StaticSparseCuda(std::string name) : name_(std::move(name)) {}
  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (d.is_cpu()) return Support::no(name_ + "'s CUDA implementation runs on CUDA devices only");
    if (const std::string why = flash_cuda_refusal(name_, p); !why.empty()) return Support::no(why);
    return cpu_definition_supports(name_, p, params);
  }
  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    const bool pattern_causal = kPatternCausalAlways || params.string("mode") == "causal";
    return std::make_unique<FlashDevicePlan>(p, kernels::compose_pattern(p, name_, params, pattern_causal));
  }

 private:
  std::string name_;
};

class SlidingWindowCuda final : public StaticSparseCuda<false> {
 public:
  SlidingWindowCuda() : StaticSparseCuda("sliding_window") {}
};
class SinkWindowCuda final : public StaticSparseCuda<true> {
 public:
  SinkWindowCuda() : StaticSparseCuda("sink_window") {}
};

ATTNBENCH_REGISTER_CUDA_IMPL("sliding_window", SlidingWindowCuda);
ATTNBENCH_REGISTER_CUDA_IMPL("sink_window", SinkWindowCuda);

}  // namespace
}  // namespace attnbench::cuda
