// Tests of the "longformer" mask: exact allowed sets on tiny cases, closed-form tiles against the
// element-wise definition, density.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("longformer mask: allowed sets by hand", "[longformer][masks][sparse]") {
  const auto centred = pattern_mask("longformer", {{"global", 1}, {"window", 2}}, 8, 8);
  CHECK(allowed_keys(*centred, 0) == Keys{0, 1, 2, 3, 4, 5, 6, 7});  // a global token sees everything
  CHECK(allowed_keys(*centred, 1) == Keys{0, 1, 2});
  CHECK(allowed_keys(*centred, 4) == Keys{0, 3, 4, 5});
  CHECK(allowed_keys(*centred, 7) == Keys{0, 6, 7});
  const auto causal = pattern_mask("longformer", {{"global", 2}, {"window", 2}, {"mode", "causal"}}, 8, 8);
  CHECK(allowed_keys(*causal, 1) == Keys{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(allowed_keys(*causal, 4) == Keys{0, 1, 3, 4});
  CHECK(allowed_keys(*causal, 7) == Keys{0, 1, 6, 7});
  const auto none = pattern_mask("longformer", {{"global", 0}, {"window", 3}}, 8, 8);
  CHECK(allowed_keys(*none, 4) == Keys{3, 4, 5});
}

TEST_CASE("longformer mask: tile() agrees with the element-wise definition", "[longformer][masks][sparse]") {
  std::uint64_t seed = 3;
  for (const json& params :
       {json{{"global", 0}, {"window", 5}}, json{{"global", 1}, {"window", 2}},
        json{{"global", 9}, {"window", 4}, {"mode", "causal"}}, json{{"global", 3}, {"window", 31}},
        json{{"global", 40}, {"window", 1}, {"mode", "causal"}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{8, 8}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("longformer", params, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
      if (lq <= lk) {
        CHECK(m->density() > 0.0);
        CHECK(m->density() <= 1.0);
      }
    }
}
