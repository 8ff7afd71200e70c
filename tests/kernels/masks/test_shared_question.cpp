// Tests of the "shared_question" mask: allowed sets by hand, tiles against the element-wise definition.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("shared_question mask: allowed sets by hand", "[shared_question][masks][eff]") {
  // Question [0, 3), answers [3, 6) and [6, 8) (5 tokens split 3 + 2).
  const auto m = pattern_mask("shared_question", {{"question", 3}, {"answers", 2}}, 8, 8);
  CHECK(allowed_keys(*m, 1) == Keys{0, 1});
  CHECK(allowed_keys(*m, 2) == Keys{0, 1, 2});
  CHECK(allowed_keys(*m, 3) == Keys{0, 1, 2, 3});
  CHECK(allowed_keys(*m, 5) == Keys{0, 1, 2, 3, 4, 5});
  CHECK(allowed_keys(*m, 6) == Keys{0, 1, 2, 6});
  CHECK(allowed_keys(*m, 7) == Keys{0, 1, 2, 6, 7});
  CHECK_THROWS_WITH(pattern_mask("shared_question", {{"question", 6}, {"answers", 3}}, 8, 8),
                    Catch::Contains("fewer than the 3 answers"));
}

TEST_CASE("shared_question mask: tile() agrees with the element-wise definition", "[shared_question][masks][eff]") {
  std::uint64_t seed = 21;
  for (const json& params : {json{{"question", 3}, {"answers", 2}}, json{{"question", 1}, {"answers", 5}},
                             json{{"question", 12}, {"answers", 3}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{20, 20}, {37, 37}, {9, 53}, {130, 130}}) {
      const auto m = pattern_mask("shared_question", params, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
    }
}
