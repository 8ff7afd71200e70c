// Mask "longformer": Longformer's attention — a sliding window (centred, or causal for autoregressive
// use) plus `global` tokens at the start that attend to every key and that every query attends to
// (Beltagy et al., Longformer: The Long-Document Transformer, 2020).
#include <memory>

#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {

std::vector<ParamSpec> longformer_params() {
  return {
      ParamSpec::integer("global", 1, 0, std::int64_t{1} << 24,
                         "first tokens with global attention: they see every key and every query sees them"),
      ParamSpec::integer("window", 256, 1, std::int64_t{1} << 24,
                         "local window: centred sees |k - pos| <= window/2, causal sees (pos - window, pos]"),
      ParamSpec::choice("mode", "centred", {"centred", "causal"}, "centred (the paper's encoder) or causal window")};
}

namespace {

// Allowed when pos < global, or k < global, or lo <= pos - k <= hi (the window band).
class LongformerMask final : public Mask {
 public:
  LongformerMask(Params p, MaskShape s) : Mask("longformer", std::move(p), s), global_(params().integer("global")) {
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
    return pos >= 0 && (pos < global_ || k < global_ || (pos - k >= lo_ && pos - k <= hi_));
  }
  // Global rows and columns are full; the tile is full when the window covers what remains, and empty
  // when it has no global row or column and the window misses it.
  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      if (p1 < global_ || k1 <= global_) return TileState::full;
      if (band_state(std::max(p0, global_), p1, std::max(k0, global_), k1, lo_, hi_) == TileState::full)
        return TileState::full;
      if (p0 >= global_ && k0 >= global_ && band_state(p0, p1, k0, k1, lo_, hi_) == TileState::empty)
        return TileState::empty;
      return TileState::partial;
    });
  }

 private:
  std::int64_t global_, lo_ = 0, hi_ = 0;
};

const MaskRegistration registration{MaskKind{
    "longformer", "window (centred or causal) plus the first `global` tokens attending and attended everywhere",
    longformer_params(),
    [](const Params& p, const MaskShape& s) { return std::make_shared<const LongformerMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
