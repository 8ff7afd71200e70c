// Tests of the "bigbird" mask: exact allowed sets on tiny cases, the seeded random blocks (count, per
// head, deterministic), closed-form tiles against the element-wise definition, density.
#include <set>

#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("bigbird mask: allowed sets by hand", "[bigbird][masks][sparse]") {
  // 12 tokens in 6 blocks of 2; block 0 global; window of 3 blocks; no random blocks.
  const auto m = pattern_mask("bigbird", {{"block", 2}, {"global", 1}, {"window", 3}, {"random", 0}}, 12, 12);
  CHECK_FALSE(m->varies_with_batch_or_head());
  CHECK(allowed_keys(*m, 0) == Keys{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(allowed_keys(*m, 1) == Keys{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(allowed_keys(*m, 2) == Keys{0, 1, 2, 3, 4, 5});
  CHECK(allowed_keys(*m, 7) == Keys{0, 1, 4, 5, 6, 7, 8, 9});
  CHECK(allowed_keys(*m, 11) == Keys{0, 1, 8, 9, 10, 11});
}

namespace {
std::set<std::int64_t> key_blocks(const Mask& m, std::int64_t q, std::int64_t h, std::int64_t block) {
  std::set<std::int64_t> blocks;
  for (const std::int64_t k : allowed_keys(m, q, h)) blocks.insert(k / block);
  return blocks;
}
}  // namespace

TEST_CASE("bigbird mask: random blocks are seeded, per head, and `random` per row", "[bigbird][masks][sparse]") {
  const json params{{"block", 4}, {"global", 1}, {"window", 3}, {"random", 2}, {"seed", 7}};
  const auto m = pattern_mask("bigbird", params, 64, 64, 4, 2);  // 16 blocks, 4 heads, batch 2
  CHECK(m->varies_with_batch_or_head());
  bool heads_differ = false;
  for (std::int64_t qb = 1; qb < 16; ++qb) {
    const std::int64_t q = qb * 4 + 1;
    for (std::int64_t h = 0; h < 4; ++h) {
      // global block 0 + window blocks within the sequence + exactly 2 random ones
      const std::int64_t window = std::min<std::int64_t>(qb + 1, 15) - std::max<std::int64_t>(qb - 1, 1) + 1;
      CHECK(key_blocks(*m, q, h, 4).size() == static_cast<std::size_t>(1 + window + 2));
      CHECK(allowed_keys(*m, q, h, 0) == allowed_keys(*m, q, h, 1));  // the same for every batch entry
    }
    heads_differ |= key_blocks(*m, q, 0, 4) != key_blocks(*m, q, 1, 4);
  }
  CHECK(heads_differ);
  // The same seed gives the same pattern; another seed another.
  const auto again = pattern_mask("bigbird", params, 64, 64, 4, 2);
  json other_params = params;
  other_params["seed"] = 8;
  const auto other = pattern_mask("bigbird", other_params, 64, 64, 4, 2);
  bool seeds_differ = false;
  for (std::int64_t q = 0; q < 64; ++q)
    for (std::int64_t h = 0; h < 4; ++h) {
      REQUIRE(allowed_keys(*m, q, h) == allowed_keys(*again, q, h));
      seeds_differ |= allowed_keys(*m, q, h) != allowed_keys(*other, q, h);
    }
  CHECK(seeds_differ);
  // Few candidates left: every one is taken, none twice.
  const auto crowded = pattern_mask("bigbird", {{"block", 4}, {"global", 1}, {"window", 3}, {"random", 5}}, 24, 24);
  CHECK(key_blocks(*crowded, 13, 0, 4).size() == 6u);  // 6 blocks, all of them
}

TEST_CASE("bigbird mask: tile() agrees with the element-wise definition", "[bigbird][masks][sparse]") {
  std::uint64_t seed = 7;
  for (const json& params : {json{{"block", 2}, {"global", 1}, {"window", 3}, {"random", 0}},
                             json{{"block", 4}, {"global", 1}, {"window", 3}, {"random", 2}, {"seed", 3}},
                             json{{"block", 5}, {"global", 2}, {"window", 1}, {"random", 3}},
                             json{{"block", 3}, {"global", 0}, {"window", 5}, {"random", 1}, {"seed", 11}},
                             json{{"block", 16}, {"global", 1}, {"window", 3}, {"random", 3}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{8, 8}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("bigbird", params, lq, lk, 3, 2);
      check_tiles_against_elements(*m, seed++, 150);
      CHECK(m->density() == Approx(counted_density(*m)));
      if (lq <= lk) {
        CHECK(m->density() > 0.0);
        CHECK(m->density() <= 1.0);
      }
    }
}
