// Mask "power": PowerAttention's static pattern — at block granularity, a query block attends to the key
// blocks at distance 0 and at every power-of-two distance, plus a local window of recent blocks and the
// first (sink) blocks, causal at the token level (Chen et al., PowerAttention: Exponentially Scaling of
// Receptive Fields for Effective Sparse Attention, 2025). The paper's mask is
// ((q_block - k_block) & (q_block - k_block - 1)) == 0 over causal blocks, with sink and window blocks
// added; block = 1 gives the token-level pattern.
#include <memory>

#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {

std::vector<ParamSpec> power_params() {
  return {
      ParamSpec::integer("block", 64, 1, std::int64_t{1} << 20, "tokens per block; distances are counted in blocks"),
      ParamSpec::integer("window", 5, 1, std::int64_t{1} << 20,
                         "local window: key blocks at distance < window (the query's own block included)"),
      ParamSpec::integer("sinks", 1, 0, std::int64_t{1} << 20, "first key blocks every query sees (attention sinks)")};
}

namespace {

// With qb = pos / block, kb = k / block, d = qb - kb: allowed when k <= pos and (d < window, or d is a
// power of two, or kb < sinks).
class PowerMask final : public Mask {
 public:
  PowerMask(Params p, MaskShape s)
      : Mask("power", std::move(p), s),
        block_(params().integer("block")),
        window_(params().integer("window")),
        sinks_(params().integer("sinks")) {}

  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    if (pos < 0 || k > pos) return false;
    const std::int64_t qb = pos / block_, kb = k / block_, d = qb - kb;
    return d < window_ || (d & (d - 1)) == 0 || kb < sinks_;
  }

  // Row by row: a row's allowed keys in the tile are counted over its O(log L) key blocks.
  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      RowFold fold;
      for (std::int64_t pos = p0; pos <= p1; ++pos)
        if (!fold.add(allowed_in_row(pos, k0, k1), k1 - k0)) break;
      return fold.state();
    });
  }

 private:
  // How many keys of [k0, k1) the query at pos sees.
  std::int64_t allowed_in_row(std::int64_t pos, std::int64_t k0, std::int64_t k1) const {
    const std::int64_t r1 = std::min(k1, pos + 1);  // causal
    if (r1 <= k0) return 0;
    const std::int64_t qb = pos / block_;
    // The sink blocks and the window blocks are two token intervals; count their union.
    const std::int64_t s0 = 0, s1 = sinks_ * block_;
    const std::int64_t w0 = std::max<std::int64_t>(0, qb - window_ + 1) * block_, w1 = (qb + 1) * block_;
    std::int64_t n =
        overlap(s0, s1, k0, r1) + overlap(w0, w1, k0, r1) - overlap(std::max(s0, w0), std::min(s1, w1), k0, r1);
    // Power-of-two distances beyond the window and outside the sinks.
    for (std::int64_t d = 1; d <= qb; d <<= 1) {
      const std::int64_t kb = qb - d;
      if (d < window_ || kb < sinks_) continue;
      n += overlap(kb * block_, (kb + 1) * block_, k0, r1);
    }
    return n;
  }

  std::int64_t block_, window_, sinks_;
};

const MaskRegistration registration{MaskKind{
    "power", "PowerAttention: causal; key blocks at power-of-two block distances, plus window and sink blocks",
    power_params(), [](const Params& p, const MaskShape& s) { return std::make_shared<const PowerMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
