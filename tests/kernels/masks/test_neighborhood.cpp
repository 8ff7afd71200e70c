// Tests of the "neighborhood" mask (NATTEN 1-D): exact allowed sets on tiny cases, including dilation and
// the shifted windows at the edges; closed-form tiles against the element-wise definition; density.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("neighborhood mask: allowed sets by hand", "[neighborhood][masks][sparse]") {
  const auto m = pattern_mask("neighborhood", {{"window", 3}, {"dilation", 1}}, 8, 8);
  CHECK(allowed_keys(*m, 0) == Keys{0, 1, 2});  // shifted right at the start, not truncated
  CHECK(allowed_keys(*m, 1) == Keys{0, 1, 2});
  CHECK(allowed_keys(*m, 3) == Keys{2, 3, 4});
  CHECK(allowed_keys(*m, 7) == Keys{5, 6, 7});  // shifted left at the end

  const auto wide = pattern_mask("neighborhood", {{"window", 5}}, 8, 8);
  CHECK(allowed_keys(*wide, 0) == Keys{0, 1, 2, 3, 4});
  CHECK(allowed_keys(*wide, 4) == Keys{2, 3, 4, 5, 6});
  CHECK(allowed_keys(*wide, 6) == Keys{3, 4, 5, 6, 7});

  // Dilation 2: groups {0,2,4,6} and {1,3,5,7}, three neighbours each.
  const auto dil = pattern_mask("neighborhood", {{"window", 3}, {"dilation", 2}}, 8, 8);
  CHECK(allowed_keys(*dil, 0) == Keys{0, 2, 4});
  CHECK(allowed_keys(*dil, 2) == Keys{0, 2, 4});
  CHECK(allowed_keys(*dil, 4) == Keys{2, 4, 6});
  CHECK(allowed_keys(*dil, 6) == Keys{2, 4, 6});
  CHECK(allowed_keys(*dil, 1) == Keys{1, 3, 5});
  CHECK(allowed_keys(*dil, 5) == Keys{3, 5, 7});
  CHECK(allowed_keys(*dil, 7) == Keys{3, 5, 7});

  // Length 9 with dilation 2: groups of 5 ({0,...,8}) and 4 ({1,...,7}) members, as NATTEN's window
  // start computes them (it handles the length remainder per group).
  const auto odd = pattern_mask("neighborhood", {{"window", 3}, {"dilation", 2}}, 9, 9);
  CHECK(allowed_keys(*odd, 8) == Keys{4, 6, 8});
  CHECK(allowed_keys(*odd, 7) == Keys{3, 5, 7});
  CHECK(allowed_keys(*odd, 4) == Keys{2, 4, 6});

  // Every query sees exactly `window` keys when window·dilation <= L.
  const auto big = pattern_mask("neighborhood", {{"window", 7}, {"dilation", 3}}, 40, 40);
  for (std::int64_t q = 0; q < 40; ++q) {
    const Keys keys = allowed_keys(*big, q);
    REQUIRE(keys.size() == 7u);
    for (const std::int64_t k : keys) CHECK(k % 3 == q % 3);
    CHECK(std::find(keys.begin(), keys.end(), q) != keys.end());
  }
}

TEST_CASE("neighborhood mask: tile() agrees with the element-wise definition", "[neighborhood][masks][sparse]") {
  std::uint64_t seed = 4;
  for (const json& params : {json{{"window", 1}}, json{{"window", 3}}, json{{"window", 7}, {"dilation", 2}},
                             json{{"window", 5}, {"dilation", 3}}, json{{"window", 3}, {"dilation", 6}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{20, 20}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("neighborhood", params, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
      if (lq <= lk) {
        CHECK(m->density() > 0.0);
        CHECK(m->density() <= 1.0);
      }
    }
}
