// Method "sliding_window": exact attention under a sliding-window mask (causal or centred), computed by
// flash_core over the tiles the band touches.
#include "kernels/cpu/sparse_static.hpp"

namespace attnbench {
namespace {

class SlidingWindow final : public kernels::StaticSparseMethod {
 protected:
  Pattern pattern() const override {
    return {"sliding_window", "exact attention over a local window of keys (causal or centred); O(L·window) work",
            "Beltagy et al., Longformer: The Long-Document Transformer (2020); Jiang et al., Mistral 7B (2023)",
            masks::sliding_window_params()};
  }
  bool pattern_is_causal(const Params& params) const override { return params.string("mode") == "causal"; }
  Support check(const Problem& p, const Params& params) const override {
    const std::int64_t window = params.integer("window");
    if (window > p.kv_len)
      return Support::no("window (" + std::to_string(window) + ") must not exceed kv_len (" + std::to_string(p.kv_len) +
                         "); a window that long is plain attention — use flash");
    return Support::yes();
  }
  std::pair<std::int64_t, std::int64_t> tile_sizes(const Params& params) const override {
    return {64, kernels::key_tile_for_span(params.integer("window") + 1)};
  }
};

ATTNBENCH_REGISTER_METHOD(SlidingWindow);

}  // namespace
}  // namespace attnbench
