// Mask "bigbird": BigBird's block-sparse pattern (ITC form) — global blocks that attend to and are
// attended by everything, a sliding window of blocks, and a few random key blocks per query block
// drawn per head from a seed (Zaheer et al., Big Bird: Transformers for Longer Sequences, 2020).
// Global blocks here are the first `global` blocks.
#include <cstdlib>
#include <memory>
#include <string>

#include "attnbench/rng.hpp"
#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {

std::vector<ParamSpec> bigbird_params() {
  return {ParamSpec::integer("block", 64, 1, std::int64_t{1} << 20, "tokens per block"),
          ParamSpec::integer("global", 1, 0, std::int64_t{1} << 20, "first blocks with global attention"),
          ParamSpec::integer("window", 3, 1, std::int64_t{1} << 20,
                             "sliding window in blocks (odd): key blocks with |kb - qb| <= window/2"),
          ParamSpec::integer("random", 3, 0, std::int64_t{1} << 20, "random key blocks per query block and head"),
          ParamSpec::integer("seed", 0, 0, std::int64_t{1} << 40, "seed of the random block choice")};
}

namespace {

// With qb = pos / block, kb = k / block: allowed when qb < global, kb < global, |kb - qb| <= window/2,
// or kb is one of the random blocks of (head, qb). Random blocks are drawn without replacement from the
// blocks the window and the global blocks leave, so each row gets `random` extra blocks where there are
// that many.
class BigBirdMask final : public Mask {
 public:
  BigBirdMask(Params p, MaskShape s)
      : Mask("bigbird", std::move(p), s),
        block_(params().integer("block")),
        global_(params().integer("global")),
        half_(params().integer("window") / 2),
        random_(params().integer("random")),
        blocks_((s.k_len + block_ - 1) / block_) {
    draw_random_blocks(static_cast<std::uint64_t>(params().integer("seed")));
  }

  bool allowed(std::int64_t, std::int64_t h, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    if (pos < 0) return false;
    const std::int64_t qb = pos / block_, kb = k / block_;
    if (qb < global_ || kb < global_ || std::abs(kb - qb) <= half_) return true;
    const std::int64_t* r = random_of(h, qb);
    return std::find(r, r + random_, kb) != r + random_;
  }

  // Rows of one query block share their key blocks: one count per query block in the tile.
  TileState tile(std::int64_t, std::int64_t h, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      RowFold fold;
      for (std::int64_t qb = p0 / block_; qb <= p1 / block_; ++qb)
        if (!fold.add(allowed_in_row(h, qb, k0, k1), k1 - k0)) break;
      return fold.state();
    });
  }

  bool varies_with_batch_or_head() const override { return random_ > 0; }

 private:
  // Keys of [k0, k1) a query in block qb sees (global, window and random blocks are disjoint sets here,
  // once the window's overlap with the global blocks is taken out).
  std::int64_t allowed_in_row(std::int64_t h, std::int64_t qb, std::int64_t k0, std::int64_t k1) const {
    if (qb < global_) return k1 - k0;
    const std::int64_t g1 = global_ * block_;
    const std::int64_t w0 = std::max<std::int64_t>(0, qb - half_) * block_, w1 = (qb + half_ + 1) * block_;
    std::int64_t n = overlap(0, g1, k0, k1) + overlap(w0, w1, k0, k1) - overlap(w0, std::min(w1, g1), k0, k1);
    const std::int64_t* r = random_of(h, qb);
    for (std::int64_t i = 0; i < random_; ++i)
      if (r[i] >= 0) n += overlap(r[i] * block_, (r[i] + 1) * block_, k0, k1);
    return n;
  }

  const std::int64_t* random_of(std::int64_t h, std::int64_t qb) const {
    return random_blocks_.data() + (h * blocks_ + qb) * random_;
  }

  bool excluded(std::int64_t qb, std::int64_t kb) const { return kb < global_ || std::abs(kb - qb) <= half_; }

  // For each head (its own stream, derived from the seed) and each query block, `random` distinct key
  // blocks among those not already seen; -1 marks a slot with no candidate left.
  void draw_random_blocks(std::uint64_t seed) {
    const std::int64_t heads = shape().heads;
    random_blocks_.assign(static_cast<std::size_t>(heads * blocks_ * random_), -1);
    std::vector<std::int64_t> candidates;
    for (std::int64_t h = 0; h < heads; ++h) {
      Rng rng(derive_seed(seed, "bigbird head " + std::to_string(h)));
      for (std::int64_t qb = global_; qb < blocks_; ++qb) {
        std::int64_t* out = random_blocks_.data() + (h * blocks_ + qb) * random_;
        const std::int64_t in_window = overlap(qb - half_, qb + half_ + 1, global_, blocks_);
        const std::int64_t available = std::max<std::int64_t>(0, blocks_ - global_ - in_window);
        if (available > 4 * random_) {
          // Plenty to choose from: draw and reject repeats and excluded blocks.
          std::int64_t got = 0;
          while (got < random_) {
            const auto kb = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(blocks_)));
            if (excluded(qb, kb) || std::find(out, out + got, kb) != out + got) continue;
            out[got++] = kb;
          }
        } else {
          // Few candidates: a partial Fisher-Yates shuffle of the list of them.
          candidates.clear();
          for (std::int64_t kb = 0; kb < blocks_; ++kb)
            if (!excluded(qb, kb)) candidates.push_back(kb);
          const std::int64_t take = std::min<std::int64_t>(random_, static_cast<std::int64_t>(candidates.size()));
          for (std::int64_t i = 0; i < take; ++i) {
            const auto j = i + static_cast<std::int64_t>(rng.below(
                                   static_cast<std::uint64_t>(static_cast<std::int64_t>(candidates.size()) - i)));
            std::swap(candidates[i], candidates[j]);
            out[i] = candidates[i];
          }
        }
      }
    }
  }

  std::int64_t block_, global_, half_, random_, blocks_;
  std::vector<std::int64_t> random_blocks_;  // [heads][blocks][random]
};

const MaskRegistration registration{MaskKind{
    "bigbird", "BigBird blocks: global + sliding window + `random` seeded random blocks per query block and head",
    bigbird_params(), [](const Params& p, const MaskShape& s) { return std::make_shared<const BigBirdMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
