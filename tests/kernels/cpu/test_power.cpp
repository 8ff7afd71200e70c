// Tests of the power method: equal to the float64 reference on the same composed mask over shapes, block
// sizes, GQA, query chunks and dtypes; refusals.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;

TEST_CASE("power matches the reference on the composed mask", "[power][methods][sparse]") {
  check_method_cases("power", {
                                  {{1, 1, 1, 2, 2, 64, 64}, {{"block", 1}, {"window", 1}, {"sinks", 0}}},
                                  {{2, 2, 2, 7, 7, 40, 40}, {{"block", 1}, {"window", 1}, {"sinks", 1}}},
                                  {{1, 8, 2, 100, 100, 64, 64}, {{"block", 4}, {"window", 2}, {"sinks", 1}}},
                                  {{1, 2, 1, 37, 300, 64, 48}, {{"block", 8}, {"window", 3}, {"sinks", 2}}},
                                  {{1, 2, 2, 257, 257, 96, 96}, {{"block", 16}, {"window", 5}, {"sinks", 1}}},
                                  {{1, 2, 2, 300, 300, 64, 64},
                                   {{"block", 32}, {"window", 2}, {"sinks", 1}}},  // one tile per block pair
                              });
}

TEST_CASE("power declares its parameters and refuses what it cannot do", "[power][methods][sparse]") {
  check_declaration("power");
  check_common_refusals("power", {{"block", 4}});
  const Problem p = sequence_problem({1, 2, 2, 64, 64, 32, 32}, "full");
  CHECK_THAT(refusal("power", p, {{"block", 64}}), Catch::Contains("block (64) must be smaller than kv_len (64)"));
  CHECK(refusal("power", p, {{"block", 63}}).empty());
}
