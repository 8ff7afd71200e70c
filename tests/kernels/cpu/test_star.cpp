// Tests of the star method: equal to the float64 reference on the same composed mask over shapes, block
// sizes, GQA, query chunks and dtypes; refusals.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;

TEST_CASE("star matches the reference on the composed mask", "[star][methods][sparse]") {
  check_method_cases("star", {
                                 {{1, 1, 1, 2, 2, 64, 64}, {{"block", 1}, {"query_len", 1}}},
                                 {{2, 2, 2, 7, 7, 40, 40}, {{"block", 2}, {"query_len", 2}}},
                                 {{1, 8, 2, 100, 100, 64, 64}, {{"block", 16}, {"query_len", 10}}},
                                 {{1, 2, 1, 37, 300, 64, 48},
                                  {{"block", 64}, {"query_len", 20}}},  // queries straddle context and query phase
                                 {{1, 2, 2, 257, 257, 96, 96}, {{"block", 50}, {"query_len", 57}}},
                             });
}

TEST_CASE("star declares its parameters and refuses what it cannot do", "[star][methods][sparse]") {
  check_declaration("star");
  check_common_refusals("star", {{"block", 16}, {"query_len", 8}});
  const Problem p = sequence_problem({1, 2, 2, 64, 64, 32, 32}, "full");
  CHECK_THAT(refusal("star", p, {{"query_len", 64}}),
             Catch::Contains("query_len (64) must be smaller than kv_len (64)"));
  CHECK(refusal("star", p, {{"query_len", 63}}).empty());
}
