// Mask "block_causal": causal at the granularity of blocks — a query sees every key of its own block and
// of all earlier blocks (blockwise/semi-autoregressive decoding, chunked-prefill style attention).
#include <memory>

#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {
namespace {

std::vector<ParamSpec> block_causal_params() {
  return {ParamSpec::integer("block", 64, 1, std::int64_t{1} << 24, "tokens per block")};
}

// Allowed when k / block <= pos / block. Monotone in both positions, so the tile's corners decide it.
class BlockCausalMask final : public Mask {
 public:
  BlockCausalMask(Params p, MaskShape s) : Mask("block_causal", std::move(p), s), block_(params().integer("block")) {}

  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    return pos >= 0 && k / block_ <= pos / block_;
  }

  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      if ((k1 - 1) / block_ <= p0 / block_) return TileState::full;
      if (k0 / block_ > p1 / block_) return TileState::empty;
      return TileState::partial;
    });
  }

 private:
  std::int64_t block_;
};

const MaskRegistration registration{MaskKind{
    "block_causal", "query at pos sees keys k with k / block <= pos / block (its own block and all earlier ones)",
    block_causal_params(),
    [](const Params& p, const MaskShape& s) { return std::make_shared<const BlockCausalMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
