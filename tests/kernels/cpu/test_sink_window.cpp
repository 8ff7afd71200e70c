// Tests of the sink_window method: equal to the float64 reference on the same composed mask over shapes,
// GQA, query chunks and dtypes; refusals.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;

TEST_CASE("sink_window matches the reference on the composed mask", "[sink_window][methods][sparse]") {
  check_method_cases("sink_window", {
                                        {{1, 1, 1, 1, 1, 64, 64}, {{"sinks", 0}, {"window", 1}}},
                                        {{2, 2, 2, 7, 7, 40, 40}, {{"sinks", 2}, {"window", 2}}},
                                        {{1, 8, 2, 100, 100, 64, 64}, {{"sinks", 4}, {"window", 16}}},
                                        {{1, 2, 1, 37, 300, 64, 48}, {{"sinks", 10}, {"window", 50}}},
                                        {{1, 2, 2, 257, 257, 96, 96}, {{"sinks", 70}, {"window", 130}}},
                                    });
}

TEST_CASE("sink_window declares its parameters and refuses what it cannot do", "[sink_window][methods][sparse]") {
  check_declaration("sink_window");
  check_common_refusals("sink_window", {{"sinks", 2}, {"window", 16}});
  const Problem p = sequence_problem({1, 2, 2, 64, 64, 32, 32}, "full");
  CHECK_THAT(refusal("sink_window", p, {{"sinks", 4}, {"window", 61}}),
             Catch::Contains("sinks (4) + window (61) must not exceed kv_len (64)"));
  CHECK(refusal("sink_window", p, {{"sinks", 4}, {"window", 60}}).empty());
}
