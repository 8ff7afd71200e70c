// Tests of the "star" mask (Star Attention's two phases): exact allowed sets on tiny cases, closed-form
// tiles against the element-wise definition, density.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("star mask: allowed sets by hand", "[star][masks][sparse]") {
  // L = 8, query_len 2: context 0..5 in blocks {0,1} (anchor), {2,3}, {4,5}; queries 6, 7 see all before.
  const auto m = pattern_mask("star", {{"block", 2}, {"query_len", 2}}, 8, 8);
  CHECK(allowed_keys(*m, 0) == Keys{0});
  CHECK(allowed_keys(*m, 1) == Keys{0, 1});
  CHECK(allowed_keys(*m, 2) == Keys{0, 1, 2});
  CHECK(allowed_keys(*m, 3) == Keys{0, 1, 2, 3});
  CHECK(allowed_keys(*m, 4) == Keys{0, 1, 4});
  CHECK(allowed_keys(*m, 5) == Keys{0, 1, 4, 5});
  CHECK(allowed_keys(*m, 6) == Keys{0, 1, 2, 3, 4, 5, 6});
  CHECK(allowed_keys(*m, 7) == Keys{0, 1, 2, 3, 4, 5, 6, 7});
  // Only the last 3 positions as queries (5, 6, 7), context length not a multiple of the block.
  const auto tail = pattern_mask("star", {{"block", 4}, {"query_len", 1}}, 3, 8);  // context 0..6: {0-3}, {4-6}
  CHECK(allowed_keys(*tail, 0) == Keys{0, 1, 2, 3, 4, 5});
  CHECK(allowed_keys(*tail, 1) == Keys{0, 1, 2, 3, 4, 5, 6});
  CHECK(allowed_keys(*tail, 2) == Keys{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("star mask: tile() agrees with the element-wise definition", "[star][masks][sparse]") {
  std::uint64_t seed = 6;
  for (const json& params : {json{{"block", 2}, {"query_len", 2}}, json{{"block", 5}, {"query_len", 7}},
                             json{{"block", 16}, {"query_len", 1}}, json{{"block", 1}, {"query_len", 0}},
                             json{{"block", 64}, {"query_len", 30}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{8, 8}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("star", params, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
      if (lq <= lk) {
        CHECK(m->density() > 0.0);
        CHECK(m->density() <= 1.0);
      }
    }
}
