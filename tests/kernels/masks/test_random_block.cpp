// Tests of the "random_block" mask: the extremes by hand, the kept fraction, seeding and per-head
// variation, tiles against the element-wise definition.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("random_block mask: extremes by hand, kept fraction, seeds and heads", "[random_block][masks][eff]") {
  const auto diagonal = pattern_mask("random_block", {{"block", 2}, {"density", 0.0}}, 8, 8);
  CHECK(allowed_keys(*diagonal, 3) == Keys{2, 3});
  CHECK(allowed_keys(*diagonal, 4) == Keys{4, 5});
  const auto all = pattern_mask("random_block", {{"block", 2}, {"density", 1.0}}, 8, 8);
  CHECK(allowed_keys(*all, 0).size() == 8);
  const auto causal = pattern_mask("random_block", {{"block", 2}, {"density", 1.0}, {"causal", true}}, 8, 8);
  CHECK(allowed_keys(*causal, 4) == Keys{0, 1, 2, 3, 4});

  // 64 blocks: 4032 off-diagonal pairs per head, kept with probability 0.3 (±5 standard deviations).
  const auto m = pattern_mask("random_block", {{"block", 16}, {"density", 0.3}, {"seed", 5}}, 1024, 1024, 2);
  const double blocks = 64, expected = (blocks + 0.3 * blocks * (blocks - 1)) / (blocks * blocks);
  CHECK(m->density() == Approx(expected).margin(5 * std::sqrt(0.3 * 0.7 / (blocks * (blocks - 1) * 2))));
  CHECK(m->varies_with_batch_or_head());
  const BlockMap h0 = lower_to_block_map(*m, 0, 0, 16, 16), h1 = lower_to_block_map(*m, 0, 1, 16, 16);
  CHECK(h0.states != h1.states);
  const auto same = pattern_mask("random_block", {{"block", 16}, {"density", 0.3}, {"seed", 5}}, 1024, 1024, 2);
  const auto other = pattern_mask("random_block", {{"block", 16}, {"density", 0.3}, {"seed", 6}}, 1024, 1024, 2);
  CHECK(lower_to_block_map(*same, 0, 0, 16, 16).states == h0.states);
  CHECK(lower_to_block_map(*other, 0, 0, 16, 16).states != h0.states);
}

TEST_CASE("random_block mask: tile() agrees with the element-wise definition", "[random_block][masks][eff]") {
  std::uint64_t seed = 51;
  for (const json& params :
       {json{{"block", 4}, {"density", 0.4}}, json{{"block", 7}, {"density", 0.2}, {"causal", true}},
        json{{"block", 1}, {"density", 0.5}, {"seed", 9}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{8, 8}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("random_block", params, lq, lk, 2);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
    }
}
