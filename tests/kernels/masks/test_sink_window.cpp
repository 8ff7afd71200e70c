// Tests of the "sink_window" mask: exact allowed sets on tiny cases, closed-form tiles against the
// element-wise definition, density.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("sink_window mask: allowed sets by hand", "[sink_window][masks][sparse]") {
  const auto m = pattern_mask("sink_window", {{"sinks", 2}, {"window", 2}}, 8, 8);
  CHECK(allowed_keys(*m, 0) == Keys{0});
  CHECK(allowed_keys(*m, 1) == Keys{0, 1});
  CHECK(allowed_keys(*m, 2) == Keys{0, 1, 2});
  CHECK(allowed_keys(*m, 5) == Keys{0, 1, 4, 5});
  CHECK(allowed_keys(*m, 7) == Keys{0, 1, 6, 7});
  const auto no_sinks = pattern_mask("sink_window", {{"sinks", 0}, {"window", 3}}, 8, 8);
  CHECK(allowed_keys(*no_sinks, 6) == Keys{4, 5, 6});
  const auto tail = pattern_mask("sink_window", {{"sinks", 1}, {"window", 2}}, 3, 8);  // positions 5..7
  CHECK(allowed_keys(*tail, 0) == Keys{0, 4, 5});
}

TEST_CASE("sink_window mask: tile() agrees with the element-wise definition", "[sink_window][masks][sparse]") {
  std::uint64_t seed = 2;
  for (const json& params : {json{{"sinks", 0}, {"window", 4}}, json{{"sinks", 1}, {"window", 1}},
                             json{{"sinks", 4}, {"window", 9}}, json{{"sinks", 30}, {"window", 3}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{8, 8}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("sink_window", params, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
      if (lq <= lk) {
        CHECK(m->density() > 0.0);
        CHECK(m->density() <= 1.0);
      }
    }
}
