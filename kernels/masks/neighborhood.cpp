// Mask "neighborhood": 1-D (dilated) neighborhood attention as NATTEN defines it — each query attends to
// exactly `window` keys of its dilation group (the positions congruent to it modulo `dilation`), centred
// on it where possible and shifted, not truncated, at the sequence edges (Hassani et al., Neighborhood
// Attention Transformer, 2023; Dilated Neighborhood Attention Transformer, 2022; NATTEN).
#include <memory>

#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {

std::vector<ParamSpec> neighborhood_params() {
  return {ParamSpec::integer("window", 127, 1, std::int64_t{1} << 24,
                             "keys per query (NATTEN's kernel_size, odd); needs window·dilation <= kv_len"),
          ParamSpec::integer("dilation", 1, 1, std::int64_t{1} << 20,
                             "stride between neighbours; a query only sees positions congruent to it modulo dilation")};
}

namespace {

// Query at pos, in group r = pos mod d at group index j = pos / d; the group has n = ⌈(L - r) / d⌉
// members. Its window is group indices [s, s + window) with s = clamp(j - window/2, 0, n - window),
// which is NATTEN's window start (centred in the interior, pinned to the first or last `window` members
// near the edges).
class NeighborhoodMask final : public Mask {
 public:
  NeighborhoodMask(Params p, MaskShape s)
      : Mask("neighborhood", std::move(p), s),
        window_(params().integer("window")),
        dilation_(params().integer("dilation")) {}

  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    if (pos < 0 || k < 0) return false;
    const Window w = window_of(pos);
    return k % dilation_ == w.residue && k / dilation_ >= w.first && k / dilation_ < w.last;
  }

  // Row by row: each row's allowed keys in [k0, k1) are counted in O(1).
  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      RowFold fold;
      for (std::int64_t pos = p0; pos <= p1; ++pos) {
        const Window w = window_of(pos);
        // group indices m with k0 <= m·d + r < k1
        const std::int64_t m0 = -floor_div(-(k0 - w.residue), dilation_);
        const std::int64_t m1 = floor_div(k1 - 1 - w.residue, dilation_) + 1;
        if (!fold.add(overlap(m0, m1, w.first, w.last), k1 - k0)) break;
      }
      return fold.state();
    });
  }

 private:
  struct Window {
    std::int64_t residue, first, last;  // group residue and group indices [first, last)
  };
  Window window_of(std::int64_t pos) const {
    const std::int64_t L = shape().k_len, d = dilation_;
    const std::int64_t r = pos % d, j = pos / d;
    const std::int64_t members = (L - r + d - 1) / d;
    // A group shorter than the window (window·dilation > kv_len, refused by the method) sees all of itself.
    const std::int64_t span = std::min(window_, members);
    const std::int64_t first = std::clamp<std::int64_t>(j - window_ / 2, 0, members - span);
    return {r, first, first + span};
  }

  std::int64_t window_, dilation_;
};

const MaskRegistration registration{
    MaskKind{"neighborhood", "NATTEN 1-D: `window` keys of the query's dilation group, centred, shifted at the edges",
             neighborhood_params(),
             [](const Params& p, const MaskShape& s) { return std::make_shared<const NeighborhoodMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
