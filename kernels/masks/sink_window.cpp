// Mask "sink_window": StreamingLLM's attention — the first `sinks` tokens (attention sinks) plus the
// `window` most recent tokens, causal (Xiao et al., Efficient Streaming Language Models with Attention Sinks).
#include <memory>

#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {

std::vector<ParamSpec> sink_window_params() {
  return {
      ParamSpec::integer("sinks", 4, 0, std::int64_t{1} << 24, "initial tokens every query sees (attention sinks)"),
      ParamSpec::integer("window", 1024, 1, std::int64_t{1} << 24, "recent tokens each query sees, itself included")};
}

namespace {

// Allowed when k <= pos and (k < sinks or pos - k < window).
class SinkWindowMask final : public Mask {
 public:
  SinkWindowMask(Params p, MaskShape s)
      : Mask("sink_window", std::move(p), s), sinks_(params().integer("sinks")), window_(params().integer("window")) {}
  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    return pos >= 0 && k <= pos && (k < sinks_ || pos - k < window_);
  }
  // The keys below `sinks` follow the causal rule alone, the rest the window band: split the tile there.
  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      const std::int64_t split = std::clamp(sinks_, k0, k1);
      RowFold fold;
      if (split > k0) {
        fold.add(band_state(p0, p1, k0, split, 0, std::int64_t{1} << 62));
      }
      if (k1 > split) {
        fold.add(band_state(p0, p1, split, k1, 0, window_ - 1));
      }
      return fold.state();
    });
  }

 private:
  std::int64_t sinks_, window_;
};

const MaskRegistration registration{
    MaskKind{"sink_window", "causal: query at pos sees keys k < sinks and pos - window < k <= pos (StreamingLLM)",
             sink_window_params(),
             [](const Params& p, const MaskShape& s) { return std::make_shared<const SinkWindowMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
