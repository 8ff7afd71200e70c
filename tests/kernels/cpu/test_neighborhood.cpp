// Tests of the neighborhood method: equal to the float64 reference on the same composed mask over shapes,
// dilations, GQA, query chunks and dtypes; refusals (even windows, groups shorter than the window, causal).
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;

TEST_CASE("neighborhood matches the reference on the composed mask", "[neighborhood][methods][sparse]") {
  // NATTEN's pattern is non-causal; a causal problem is refused (tested below).
  check_method_cases(
      "neighborhood",
      {
          {{1, 1, 1, 1, 1, 64, 64}, {{"window", 1}}},
          {{2, 2, 2, 7, 7, 40, 40}, {{"window", 3}}},
          {{1, 8, 2, 100, 100, 64, 64}, {{"window", 15}, {"dilation", 2}}},
          {{1, 2, 1, 37, 300, 64, 48}, {{"window", 21}, {"dilation", 7}}},
          {{1, 2, 2, 257, 257, 96, 96}, {{"window", 127}}},
          {{1, 2, 2, 257, 257, 64, 64}, {{"window", 5}, {"dilation", 51}}},  // window·dilation = 255 of 257
      },
      {"full"});
}

TEST_CASE("neighborhood declares its parameters and refuses what it cannot do", "[neighborhood][methods][sparse]") {
  check_declaration("neighborhood");
  check_common_refusals("neighborhood", {{"window", 7}});
  const Problem p = sequence_problem({1, 2, 2, 64, 64, 32, 32}, "full");
  CHECK_THAT(refusal("neighborhood", p, {{"window", 8}}), Catch::Contains("window (8) must be odd"));
  CHECK_THAT(refusal("neighborhood", p, {{"window", 9}, {"dilation", 8}}),
             Catch::Contains("window (9) × dilation (8) must not exceed kv_len (64)"));
  CHECK(refusal("neighborhood", p, {{"window", 9}, {"dilation", 7}}).empty());
  CHECK_THAT(refusal("neighborhood", sequence_problem({1, 2, 2, 64, 64, 32, 32}, "causal"), {{"window", 7}}),
             Catch::Contains("non-causal"));
}
