// Mask "star": Star Attention's two phases as one mask (Acharya et al., Star Attention: Efficient LLM
// Inference over Long Sequences, 2024). Phase 1 (context encoding): the first kv_len - query_len tokens
// are split into blocks of `block` tokens; each block attends, causally, to itself and to the first
// (anchor) block. Phase 2 (query encoding): the last `query_len` tokens attend to every token before
// them, causal. The model is a decoder-only LLM, so the whole mask is causal.
#include <memory>

#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {

std::vector<ParamSpec> star_params() {
  return {ParamSpec::integer("block", 512, 1, std::int64_t{1} << 24,
                             "context block size (tokens per host); the first block is the anchor"),
          ParamSpec::integer("query_len", 64, 0, std::int64_t{1} << 24,
                             "tokens at the end of the sequence (query and response) that see the whole context")};
}

namespace {

// With C = kv_len - query_len: allowed when k <= pos and (pos >= C, or k < block, or k / block == pos / block).
class StarMask final : public Mask {
 public:
  StarMask(Params p, MaskShape s)
      : Mask("star", std::move(p), s),
        block_(params().integer("block")),
        context_(std::max<std::int64_t>(0, s.k_len - params().integer("query_len"))) {}

  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    if (pos < 0 || k > pos) return false;
    return pos >= context_ || k < block_ || k / block_ == pos / block_;
  }

  // Row by row, each counted in O(1).
  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      RowFold fold;
      for (std::int64_t pos = p0; pos <= p1; ++pos) {
        const std::int64_t r1 = std::min(k1, pos + 1);  // causal
        std::int64_t n = std::max<std::int64_t>(0, r1 - k0);
        if (pos < context_ && n > 0) {
          const std::int64_t qb = pos / block_;
          n = overlap(0, block_, k0, r1) + (qb > 0 ? overlap(qb * block_, (qb + 1) * block_, k0, r1) : 0);
        }
        if (!fold.add(n, k1 - k0)) break;
      }
      return fold.state();
    });
  }

 private:
  std::int64_t block_, context_;
};

const MaskRegistration registration{MaskKind{
    "star",
    "Star Attention: context blocks see themselves and the anchor block; the last query_len tokens see all (causal)",
    star_params(), [](const Params& p, const MaskShape& s) { return std::make_shared<const StarMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
