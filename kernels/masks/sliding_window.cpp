// Mask "sliding_window": each query sees the keys within a fixed distance of its position, either the
// `window` most recent ones (causal, Mistral/Longformer-style local attention) or a centred band.
#include <cstdlib>
#include <memory>

#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {

std::vector<ParamSpec> sliding_window_params() {
  return {ParamSpec::integer("window", 256, 1, std::int64_t{1} << 24,
                             "keys per query: causal sees (pos - window, pos], centred sees |k - pos| <= window/2"),
          ParamSpec::choice("mode", "causal", {"causal", "centred"},
                            "causal: the window ends at the query; centred: around it")};
}

namespace {

// Allowed when lo <= pos - k <= hi: causal [0, window - 1], centred [-window/2, window/2].
class SlidingWindowMask final : public Mask {
 public:
  SlidingWindowMask(Params p, MaskShape s) : Mask("sliding_window", std::move(p), s) {
    const std::int64_t window = params().integer("window");
    if (params().string("mode") == "causal") {
      lo_ = 0;
      hi_ = window - 1;
    } else {
      lo_ = -(window / 2);
      hi_ = window / 2;
    }
  }
  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    return pos >= 0 && pos - k >= lo_ && pos - k <= hi_;
  }
  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off,
                                [&](std::int64_t p0, std::int64_t p1) { return band_state(p0, p1, k0, k1, lo_, hi_); });
  }

 private:
  std::int64_t lo_ = 0, hi_ = 0;
};

const MaskRegistration registration{
    MaskKind{"sliding_window",
             "query at pos sees keys k with pos - window < k <= pos (causal) or |k - pos| <= window/2 (centred)",
             sliding_window_params(),
             [](const Params& p, const MaskShape& s) { return std::make_shared<const SlidingWindowMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
