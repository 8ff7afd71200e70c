// Tests of the "power" mask (PowerAttention): exact allowed sets on tiny cases at token and block
// granularity, closed-form tiles against the element-wise definition, density.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("power mask: allowed sets by hand", "[power][masks][sparse]") {
  // Token level: distances 0, 1, 2, 4, 8 from position 13.
  const auto tokens = pattern_mask("power", {{"block", 1}, {"window", 1}, {"sinks", 0}}, 16, 16);
  CHECK(allowed_keys(*tokens, 13) == Keys{5, 9, 11, 12, 13});
  CHECK(allowed_keys(*tokens, 0) == Keys{0});
  CHECK(allowed_keys(*tokens, 7) == Keys{3, 5, 6, 7});
  const auto sinks = pattern_mask("power", {{"block", 1}, {"window", 1}, {"sinks", 1}}, 16, 16);
  CHECK(allowed_keys(*sinks, 13) == Keys{0, 5, 9, 11, 12, 13});
  const auto window = pattern_mask("power", {{"block", 1}, {"window", 4}, {"sinks", 0}}, 16, 16);
  CHECK(allowed_keys(*window, 13) == Keys{5, 9, 10, 11, 12, 13});
  // Blocks of 2: position 13 is in block 6; blocks 6, 5, 4, 2 (distances 0, 1, 2, 4), causal inside block 6.
  const auto blocks = pattern_mask("power", {{"block", 2}, {"window", 1}, {"sinks", 0}}, 16, 16);
  CHECK(allowed_keys(*blocks, 13) == Keys{4, 5, 8, 9, 10, 11, 12, 13});
  CHECK(allowed_keys(*blocks, 12) == Keys{4, 5, 8, 9, 10, 11, 12});
  CHECK(allowed_keys(*blocks, 6) == Keys{2, 3, 4, 5, 6});  // block 3: blocks 3, 2, 1; block 0 is at distance 3
}

TEST_CASE("power mask: tile() agrees with the element-wise definition", "[power][masks][sparse]") {
  std::uint64_t seed = 5;
  for (const json& params :
       {json{{"block", 1}, {"window", 1}, {"sinks", 0}}, json{{"block", 1}, {"window", 3}, {"sinks", 2}},
        json{{"block", 4}, {"window", 2}, {"sinks", 1}}, json{{"block", 7}, {"window", 1}, {"sinks", 3}},
        json{{"block", 16}, {"window", 5}, {"sinks", 1}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{16, 16}, {37, 37}, {20, 53}, {53, 20}, {200, 200}}) {
      const auto m = pattern_mask("power", params, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
      if (lq <= lk) {
        CHECK(m->density() > 0.0);
        CHECK(m->density() <= 1.0);
      }
    }
}
