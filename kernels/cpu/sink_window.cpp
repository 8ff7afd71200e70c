// Method "sink_window": StreamingLLM's attention (sink tokens + recent window, causal) computed exactly by
// flash_core over the tiles the pattern touches.
#include "kernels/cpu/sparse_static.hpp"

namespace attnbench {
namespace {

class SinkWindow final : public kernels::StaticSparseMethod {
 protected:
  Pattern pattern() const override {
    return {"sink_window", "exact causal attention over the first `sinks` tokens plus the `window` most recent ones",
            "Xiao et al., Efficient Streaming Language Models with Attention Sinks (2023)",
            masks::sink_window_params()};
  }
  bool pattern_is_causal(const Params&) const override { return true; }
  Support check(const Problem& p, const Params& params) const override {
    const std::int64_t sinks = params.integer("sinks"), window = params.integer("window");
    if (sinks + window > p.kv_len)
      return Support::no("sinks (" + std::to_string(sinks) + ") + window (" + std::to_string(window) +
                         ") must not exceed kv_len (" + std::to_string(p.kv_len) +
                         "); every query would see its whole prefix — use flash with a causal mask");
    return Support::yes();
  }
  std::pair<std::int64_t, std::int64_t> tile_sizes(const Params& params) const override {
    return {64, kernels::key_tile_for_span(params.integer("window"))};
  }
};

ATTNBENCH_REGISTER_METHOD(SinkWindow);

}  // namespace
}  // namespace attnbench
