// Mask "random_block": random block-sparse attention — each (query block, key block) pair is kept with
// probability `density`, drawn per head from a seed, the diagonal block always (Sparse Transformer /
// BigBird's random component on its own, as block-sparse kernels are benchmarked).
#include <memory>

#include "attnbench/rng.hpp"
#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {
namespace {

std::vector<ParamSpec> random_block_params() {
  return {ParamSpec::integer("block", 64, 1, std::int64_t{1} << 24, "tokens per block, for queries and keys"),
          ParamSpec::number("density", 0.25, 0.0, 1.0, "probability that an off-diagonal block pair is kept"),
          ParamSpec::integer("seed", 0, 0, std::int64_t{1} << 40, "seed of the block choice"),
          ParamSpec::boolean("causal", false, "also require k <= pos")};
}

// With qb = pos / block, kb = k / block: allowed when (qb == kb or keep(h, qb, kb)) and (k <= pos if
// causal). keep() hashes (seed, head, qb, kb) to a uniform number, so no table is stored and any block
// pair is decided in O(1).
class RandomBlockMask final : public Mask {
 public:
  RandomBlockMask(Params p, MaskShape s)
      : Mask("random_block", std::move(p), s),
        block_(params().integer("block")),
        density_(params().number("density")),
        seed_(splitmix64(static_cast<std::uint64_t>(params().integer("seed")))),
        causal_(params().boolean("causal")) {}

  bool allowed(std::int64_t, std::int64_t h, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    return pos >= 0 && (!causal_ || k <= pos) && kept(h, pos / block_, k / block_);
  }

  // One sub-rectangle per block pair the tile meets: empty when the pair is dropped, else the causal
  // band's state (or full).
  TileState tile(std::int64_t, std::int64_t h, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      RowFold fold;
      for (std::int64_t qb = p0 / block_; qb <= p1 / block_; ++qb) {
        const std::int64_t r0 = std::max(p0, qb * block_), r1 = std::min(p1, (qb + 1) * block_ - 1);
        for (std::int64_t kb = k0 / block_; kb <= (k1 - 1) / block_; ++kb) {
          const std::int64_t c0 = std::max(k0, kb * block_), c1 = std::min(k1, (kb + 1) * block_);
          const TileState s = !kept(h, qb, kb) ? TileState::empty
                              : causal_        ? band_state(r0, r1, c0, c1, 0, std::int64_t{1} << 62)
                                               : TileState::full;
          if (!fold.add(s)) return TileState::partial;
        }
      }
      return fold.state();
    });
  }

  bool varies_with_batch_or_head() const override { return density_ > 0 && density_ < 1; }

 private:
  bool kept(std::int64_t h, std::int64_t qb, std::int64_t kb) const {
    if (qb == kb) return true;
    const std::uint64_t x =
        splitmix64(splitmix64(splitmix64(seed_ ^ static_cast<std::uint64_t>(h)) ^ static_cast<std::uint64_t>(qb)) ^
                   static_cast<std::uint64_t>(kb));
    return static_cast<double>(x >> 11) * 0x1.0p-53 < density_;
  }
  std::int64_t block_;
  double density_;
  std::uint64_t seed_;
  bool causal_;
};

const MaskRegistration registration{MaskKind{
    "random_block", "block pairs kept at random with probability density (per head, seeded), the diagonal always",
    random_block_params(),
    [](const Params& p, const MaskShape& s) { return std::make_shared<const RandomBlockMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
