// Tests of the "sliding_window" mask: exact allowed sets on tiny cases, closed-form tiles against the
// element-wise definition, density.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("sliding_window mask: allowed sets by hand", "[sliding_window][masks][sparse]") {
  const auto causal = pattern_mask("sliding_window", {{"window", 3}}, 8, 8);
  CHECK(allowed_keys(*causal, 0) == Keys{0});
  CHECK(allowed_keys(*causal, 1) == Keys{0, 1});
  CHECK(allowed_keys(*causal, 5) == Keys{3, 4, 5});
  CHECK(allowed_keys(*causal, 7) == Keys{5, 6, 7});

  const auto centred = pattern_mask("sliding_window", {{"window", 4}, {"mode", "centred"}}, 8, 8);
  CHECK(allowed_keys(*centred, 0) == Keys{0, 1, 2});
  CHECK(allowed_keys(*centred, 5) == Keys{3, 4, 5, 6, 7});
  CHECK(allowed_keys(*centred, 7) == Keys{5, 6, 7});

  // Bottom-right aligned: 2 queries over 8 keys sit at positions 6 and 7.
  const auto tail = pattern_mask("sliding_window", {{"window", 3}}, 2, 8);
  CHECK(allowed_keys(*tail, 0) == Keys{4, 5, 6});
  CHECK(allowed_keys(*tail, 1) == Keys{5, 6, 7});
  // More queries than keys: the first ones have no position and see nothing.
  const auto over = pattern_mask("sliding_window", {{"window", 3}, {"mode", "centred"}}, 10, 8);
  CHECK(allowed_keys(*over, 1).empty());
  CHECK(allowed_keys(*over, 2) == Keys{0, 1});
}

TEST_CASE("sliding_window mask: tile() agrees with the element-wise definition", "[sliding_window][masks][sparse]") {
  std::uint64_t seed = 1;
  for (const json& params : {json{{"window", 1}}, json{{"window", 5}}, json{{"window", 33}},
                             json{{"window", 4}, {"mode", "centred"}}, json{{"window", 17}, {"mode", "centred"}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{8, 8}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("sliding_window", params, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
      if (lq <= lk) {
        CHECK(m->density() > 0.0);
        CHECK(m->density() <= 1.0);
      }
    }
}
