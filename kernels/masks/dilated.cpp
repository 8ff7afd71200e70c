// Mask "dilated": a causal sliding window with gaps — `window` keys at distances 0, d, 2d, ... behind
// the query (Longformer's dilated sliding window; LongNet's dilation on one segment).
#include <memory>

#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {
namespace {

std::vector<ParamSpec> dilated_params() {
  return {
      ParamSpec::integer("window", 256, 1, std::int64_t{1} << 24, "keys per query, the query's own position included"),
      ParamSpec::integer("dilation", 2, 1, std::int64_t{1} << 20, "distance between consecutive keys of the window")};
}

// Allowed when d = pos − k is in [0, (window − 1)·dilation] and a multiple of dilation. A rectangle's
// differences are every integer of [p0 − (k1 − 1), p1 − k0], so: empty when no allowed d lies there;
// full when every d there is allowed (with dilation > 1 only a single difference can be).
class DilatedMask final : public Mask {
 public:
  DilatedMask(Params p, MaskShape s)
      : Mask("dilated", std::move(p), s),
        dilation_(params().integer("dilation")),
        reach_((params().integer("window") - 1) * dilation_) {}

  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t d = q + shape().offset() - k;
    return q + shape().offset() >= 0 && d >= 0 && d <= reach_ && d % dilation_ == 0;
  }

  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      const std::int64_t dmin = p0 - (k1 - 1), dmax = p1 - k0;
      const std::int64_t lo = std::max<std::int64_t>(dmin, 0), hi = std::min(dmax, reach_);
      if (lo > hi) return TileState::empty;
      const std::int64_t first = (lo + dilation_ - 1) / dilation_ * dilation_;  // lo >= 0
      if (first > hi) return TileState::empty;
      const bool every = dmin >= 0 && dmax <= reach_ && (dilation_ == 1 || dmin == dmax);
      return every ? TileState::full : TileState::partial;
    });
  }

 private:
  std::int64_t dilation_, reach_;
};

const MaskRegistration registration{
    MaskKind{"dilated", "causal: query at pos sees keys pos - i*dilation for i in [0, window)", dilated_params(),
             [](const Params& p, const MaskShape& s) { return std::make_shared<const DilatedMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
