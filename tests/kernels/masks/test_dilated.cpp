// Tests of the "dilated" mask: allowed sets by hand, tiles against the element-wise definition.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("dilated mask: allowed sets by hand", "[dilated][masks][eff]") {
  const auto m = pattern_mask("dilated", {{"window", 3}, {"dilation", 2}}, 10, 10);
  CHECK(allowed_keys(*m, 0) == Keys{0});
  CHECK(allowed_keys(*m, 1) == Keys{1});
  CHECK(allowed_keys(*m, 3) == Keys{1, 3});
  CHECK(allowed_keys(*m, 6) == Keys{2, 4, 6});
  CHECK(allowed_keys(*m, 9) == Keys{5, 7, 9});
  const auto plain = pattern_mask("dilated", {{"window", 3}, {"dilation", 1}}, 10, 10);  // = sliding window 3
  const auto window = pattern_mask("sliding_window", {{"window", 3}}, 10, 10);
  for (std::int64_t q = 0; q < 10; ++q) CHECK(allowed_keys(*plain, q) == allowed_keys(*window, q));
}

TEST_CASE("dilated mask: tile() agrees with the element-wise definition", "[dilated][masks][eff]") {
  std::uint64_t seed = 41;
  for (const json& params : {json{{"window", 3}, {"dilation", 2}}, json{{"window", 8}, {"dilation", 1}},
                             json{{"window", 5}, {"dilation", 7}}, json{{"window", 1}, {"dilation", 3}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{8, 8}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("dilated", params, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
    }
}
