// Tests of the sliding_window method: equal to the float64 reference on the same composed mask (problem
// mask ∩ window) over shapes, GQA, query chunks and dtypes; refusals; its cost follows the window.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;

TEST_CASE("sliding_window matches the reference on the composed mask", "[sliding_window][methods][sparse]") {
  check_method_cases(
      "sliding_window",
      {
          {{1, 1, 1, 1, 1, 64, 64}, {{"window", 1}}},                             // one query, one key
          {{2, 2, 2, 7, 7, 40, 40}, {{"window", 3}}},                             // odd length, batch 2
          {{1, 8, 2, 100, 100, 64, 64}, {{"window", 16}, {"mode", "centred"}}},   // GQA, centred band
          {{1, 2, 1, 37, 300, 64, 48}, {{"window", 50}}},                         // the last 37 queries of 300
          {{1, 2, 2, 257, 257, 96, 96}, {{"window", 200}, {"mode", "centred"}}},  // ragged tiles, wide band
          {{1, 4, 4, 300, 300, 64, 64}, {{"window", 300}}},                       // window = whole sequence
      });
}

TEST_CASE("sliding_window declares its parameters and refuses what it cannot do", "[sliding_window][methods][sparse]") {
  check_declaration("sliding_window");
  check_common_refusals("sliding_window", {{"window", 16}});
  const Problem p = sequence_problem({1, 2, 2, 64, 64, 32, 32}, "causal");
  CHECK_THAT(refusal("sliding_window", p, {{"window", 100}}),
             Catch::Contains("window (100) must not exceed kv_len (64)"));
  CHECK(refusal("sliding_window", p, {{"window", 64}}).empty());
}

TEST_CASE("sliding_window costs about window/L of flash", "[sliding_window][methods][sparse]") {
  const Problem p = sequence_problem({1, 8, 8, 4096, 4096, 64, 64}, "full");
  const json given{{"window", 256}};
  const Method& m = method_named("sliding_window");
  const Params params = complete_params(m.info().params, given);
  const Method& flash = method_named("flash");
  const double ratio = m.flops(p, params) / flash.flops(p, complete_params(flash.info().params, json::object()));
  INFO("flops ratio " << ratio << " vs window/L " << 256.0 / 4096);
  // Exactly the allowed pairs: row pos sees min(pos + 1, window) keys.
  CHECK(ratio == Approx((256.0 * 4096 - 256.0 * 255 / 2) / (4096.0 * 4096)));
  CHECK(ratio == Approx(256.0 / 4096).epsilon(0.04));  // the first 255 rows see fewer than 256 keys
  // And the kernel visits only the tiles the band touches.
  const auto composed = kernels::compose_pattern(p, "sliding_window", params);
  const BlockMap map = lower_to_block_map(*composed, 0, 0, 64, 128);
  const double visited =
      1.0 - static_cast<double>(map.count(TileState::empty)) / static_cast<double>(map.states.size());
  INFO("non-empty tiles " << visited);
  CHECK(visited < 0.12);
}
