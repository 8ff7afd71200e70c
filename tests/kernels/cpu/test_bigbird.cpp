// Tests of the bigbird method: equal to the float64 reference on the same composed mask (random blocks
// differ per head) over shapes, GQA, query chunks and dtypes; refusals.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;

TEST_CASE("bigbird matches the reference on the composed mask", "[bigbird][methods][sparse]") {
  check_method_cases(
      "bigbird",
      {
          {{1, 1, 1, 1, 1, 64, 64}, {{"block", 1}, {"global", 0}, {"window", 1}, {"random", 0}}},
          {{2, 2, 2, 7, 7, 40, 40}, {{"block", 1}, {"global", 1}, {"window", 3}, {"random", 2}}},
          {{1, 8, 2, 100, 100, 64, 64}, {{"block", 8}, {"global", 1}, {"window", 3}, {"random", 2}, {"seed", 5}}},
          {{2, 2, 1, 37, 300, 64, 48}, {{"block", 16}, {"global", 2}, {"window", 3}, {"random", 3}}},
          {{1, 3, 3, 257, 257, 96, 96}, {{"block", 32}, {"global", 1}, {"window", 3}, {"random", 2}, {"seed", 9}}},
      });
}

TEST_CASE("bigbird declares its parameters and refuses what it cannot do", "[bigbird][methods][sparse]") {
  check_declaration("bigbird");
  check_common_refusals("bigbird", {{"block", 4}});
  const Problem p = sequence_problem({1, 2, 2, 64, 64, 32, 32}, "full");
  CHECK_THAT(refusal("bigbird", p, {{"block", 4}, {"window", 4}}), Catch::Contains("window (4 blocks) must be odd"));
  CHECK_THAT(refusal("bigbird", p, {{"block", 16}}),
             Catch::Contains("needs global + window + random = 7 key blocks, but kv_len (64) has 4 blocks of 16"));
  CHECK(refusal("bigbird", p, {{"block", 9}}).empty());  // 8 blocks, the last one short
}
