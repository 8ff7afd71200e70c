// Tests of the "block_causal" mask: allowed sets by hand, tiles against the element-wise definition.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("block_causal mask: allowed sets by hand", "[block_causal][masks][eff]") {
  const auto m = pattern_mask("block_causal", {{"block", 4}}, 10, 10);
  CHECK(allowed_keys(*m, 0) == Keys{0, 1, 2, 3});
  CHECK(allowed_keys(*m, 3) == Keys{0, 1, 2, 3});
  CHECK(allowed_keys(*m, 5) == Keys{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(allowed_keys(*m, 9) == Keys{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  const auto one = pattern_mask("block_causal", {{"block", 1}}, 6, 6);  // block 1 is plain causal
  const auto causal = pattern_mask("causal", json::object(), 6, 6);
  for (std::int64_t q = 0; q < 6; ++q) CHECK(allowed_keys(*one, q) == allowed_keys(*causal, q));
  const auto tail = pattern_mask("block_causal", {{"block", 4}}, 2, 10);  // positions 8, 9
  CHECK(allowed_keys(*tail, 0).size() == 10);
}

TEST_CASE("block_causal mask: tile() agrees with the element-wise definition", "[block_causal][masks][eff]") {
  std::uint64_t seed = 31;
  for (const int block : {1, 3, 16, 64})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{8, 8}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("block_causal", {{"block", block}}, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
    }
}
