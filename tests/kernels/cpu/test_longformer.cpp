// Tests of the longformer method: equal to the float64 reference on the same composed mask over shapes,
// GQA, query chunks, window modes and dtypes; refusals.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;

TEST_CASE("longformer matches the reference on the composed mask", "[longformer][methods][sparse]") {
  check_method_cases(
      "longformer",
      {
          {{1, 1, 1, 1, 1, 64, 64}, {{"global", 0}, {"window", 1}}},
          {{2, 2, 2, 7, 7, 40, 40}, {{"global", 1}, {"window", 2}}},
          {{1, 8, 2, 100, 100, 64, 64}, {{"global", 3}, {"window", 16}, {"mode", "causal"}}},
          {{1, 2, 1, 37, 300, 64, 48}, {{"global", 10}, {"window", 50}}},   // the 37 queries are not global
          {{1, 2, 1, 300, 300, 64, 48}, {{"global", 70}, {"window", 33}}},  // global rows span whole tiles
          {{1, 2, 2, 257, 257, 96, 96}, {{"global", 1}, {"window", 129}, {"mode", "causal"}}},
      });
}

TEST_CASE("longformer declares its parameters and refuses what it cannot do", "[longformer][methods][sparse]") {
  check_declaration("longformer");
  check_common_refusals("longformer", {{"window", 16}});
  const Problem p = sequence_problem({1, 2, 2, 64, 64, 32, 32}, "full");
  CHECK_THAT(refusal("longformer", p, {{"window", 65}}), Catch::Contains("window (65) must not exceed kv_len (64)"));
  CHECK_THAT(refusal("longformer", p, {{"global", 65}, {"window", 8}}),
             Catch::Contains("global (65) must not exceed kv_len (64)"));
  CHECK(refusal("longformer", p, {{"global", 64}, {"window", 64}}).empty());
}
