// Tests of the CUDA kernels' host-side bookkeeping (kernels/cuda/block_lowering.hpp), on the CPU: a mask
// lowered to tile lists and bitmasks allows exactly what Mask::allowed allows, element by element, and
// MoBA's per-query rule matches the CPU method's query_blocks.
#ifdef ATTNBENCH_HAVE_CUDA
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/block_select_core.hpp"
#include "kernels/cpu/sparse_static.hpp"
#include "kernels/cuda/block_lowering.hpp"
#include "support/problems.hpp"

using namespace attnbench;

namespace {

struct Counts {
  std::int64_t allowed = 0, listed_full = 0, listed_partial = 0;
};

// Every element of every (b, h) agrees with Mask::allowed; listed tiles are ascending and never empty.
Counts check_lowering(const Mask& mask, std::int64_t block_q, std::int64_t block_k) {
  const cuda::LoweredMask l = cuda::lower_mask(mask, block_q, block_k);
  const MaskShape& s = mask.shape();
  INFO("mask " << mask.name() << " Lq " << s.q_len << " Lk " << s.k_len << " tiles " << block_q << "x" << block_k);
  REQUIRE(l.maps == (mask.varies_with_batch_or_head() ? s.batch * s.heads : 1));
  REQUIRE(l.row_start.size() == static_cast<std::size_t>(l.maps * l.q_tiles + 1));
  Counts c;
  for (std::int64_t m = 0; m < l.maps; ++m)
    for (std::int64_t qt = 0; qt < l.q_tiles; ++qt) {
      const std::int64_t row = m * l.q_tiles + qt;
      std::int32_t previous = -1;
      for (std::int32_t i = l.row_start[static_cast<std::size_t>(row)];
           i < l.row_start[static_cast<std::size_t>(row + 1)]; ++i) {
        const cuda::TileEntry& e = l.entries[static_cast<std::size_t>(i)];
        REQUIRE(e.k_tile > previous);
        REQUIRE(e.k_tile < l.k_tiles);
        previous = e.k_tile;
        (e.bits < 0 ? c.listed_full : c.listed_partial) += 1;
      }
    }
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t h = 0; h < s.heads; ++h) {
      const std::int64_t m = l.maps > 1 ? b * s.heads + h : 0;
      for (std::int64_t q = 0; q < s.q_len; ++q)
        for (std::int64_t k = 0; k < s.k_len; ++k) {
          const bool want = mask.allowed(b, h, q, k);
          c.allowed += want;
          if (cuda::lowered_allows(l, m, q, k) != want) {
            INFO("b " << b << " h " << h << " q " << q << " k " << k << ": expected " << want);
            REQUIRE(cuda::lowered_allows(l, m, q, k) == want);
          }
        }
    }
  // Partial tiles keep no bits outside the problem (the kernels test keys past kv_len only for full tiles).
  if (block_k < 64)
    for (const std::uint64_t word : l.bits) REQUIRE((word >> block_k) == 0);
  return c;
}

std::shared_ptr<const Mask> composed(const std::string& method, const std::string& problem_mask, std::int64_t q_len,
                                     std::int64_t kv_len, const json& params) {
  const Method& m = testing::method_named(method);
  Problem p = testing::make_problem({2, 3, 3, q_len, kv_len, 64, 64}, problem_mask);
  p.cross = false;
  const Params full = complete_params(m.info().params, params);
  const bool pattern_causal = method == "sink_window" || full.string("mode") == "causal";
  return kernels::compose_pattern(p, method, full, pattern_causal);
}

}  // namespace

TEST_CASE("lowered masks allow exactly what Mask::allowed allows", "[cuda][lowering]") {
  const std::vector<std::pair<std::int64_t, std::int64_t>> tiles = {{64, 64}, {64, 32}, {16, 48}, {64, 1}};
  const std::vector<std::pair<std::int64_t, std::int64_t>> lengths = {
      {1, 1}, {100, 100}, {37, 150}, {130, 70}, {257, 257}};
  for (const auto& [bq, bk] : tiles)
    for (const auto& [lq, lk] : lengths) {
      const MaskShape shape{2, 3, lq, lk};
      for (const std::string name : {"full", "causal"}) check_lowering(*make_mask(name, json::object(), shape), bq, bk);
      check_lowering(*make_mask("document", {{"doc_lens", "13,40,7"}, {"causal", true}}, shape), bq, bk);
      if (lk >= 3)  // a seeded split of 3 documents needs 3 tokens
        check_lowering(*make_mask("document", {{"documents", 3}, {"seed", 5}, {"causal", false}}, shape), bq, bk);
      check_lowering(testing::ShiftedWindow(shape, 5, 2, 23), bq, bk);
    }
}

TEST_CASE("lowered composed masks of sliding_window and sink_window match the predicate", "[cuda][lowering]") {
  const std::vector<std::pair<std::int64_t, std::int64_t>> lengths = {{100, 100}, {37, 150}, {257, 257}};
  for (const auto& [lq, lk] : lengths)
    for (const std::string pm : {"full", "causal"}) {
      for (const std::string mode : {"causal", "centred"})
        for (std::int64_t window : {1, 17, 64, 100}) {
          const auto mask = composed("sliding_window", pm, lq, lk, {{"window", window}, {"mode", mode}});
          const Counts c = check_lowering(*mask, 64, 64);
          CHECK(c.allowed > 0);
          check_lowering(*mask, 64, 32);
        }
      for (std::int64_t sinks : {0, 4, 70})
        for (std::int64_t window : {1, 30}) {
          const auto mask = composed("sink_window", pm, lq, lk, {{"sinks", sinks}, {"window", window}});
          check_lowering(*mask, 64, 64);
          check_lowering(*mask, 64, 32);
        }
    }
}

TEST_CASE("lowering skips empty tiles and lists full ones without a bitmask", "[cuda][lowering]") {
  // Causal, 256 x 256, 64 x 64 tiles: 10 tiles on or below the diagonal, the 4 diagonal ones partial.
  const auto mask = make_mask("causal", json::object(), MaskShape{1, 1, 256, 256});
  const cuda::LoweredMask l = cuda::lower_mask(*mask, 64, 64);
  CHECK(l.maps == 1);
  CHECK(l.entries.size() == 10);
  CHECK(l.partial_tiles() == 4);
  CHECK(l.bits.size() == 4 * 64);
  // The first diagonal tile's row r allows keys 0..r.
  for (std::int64_t r = 0; r < 64; ++r)
    CHECK(l.bits[static_cast<std::size_t>(r)] == (r == 63 ? ~0ull : (2ull << r) - 1));
  CHECK_THROWS_AS(cuda::lower_mask(*mask, 64, 65), std::invalid_argument);
}

TEST_CASE("moba_row is the CPU method's query_blocks with the own block in the budget", "[cuda][lowering]") {
  for (const std::string mask : {"full", "causal"})
    for (const auto& [lq, lk] :
         std::vector<std::pair<std::int64_t, std::int64_t>>{{100, 100}, {37, 100}, {100, 37}, {1, 300}})
      for (std::int64_t block : {1, 7, 16, 64, 512})
        for (std::int64_t topk : {1, 2, 3, 50}) {
          const Problem p = testing::make_problem({1, 1, 1, lq, lk, 64, 64}, mask);
          const kernels::BlockSelection s = kernels::block_selection(block, topk, true, true);
          for (std::int64_t q = 0; q < lq; ++q) {
            const kernels::QueryBlocks want = kernels::query_blocks(p, s, q);
            const cuda::MobaRow got = cuda::moba_row(q, lq, lk, mask == "causal", block, topk);
            INFO(mask << " Lq " << lq << " Lk " << lk << " block " << block << " topk " << topk << " q " << q);
            REQUIRE(got.visible_end == want.visible_end);
            REQUIRE(got.own == want.own);
            REQUIRE(got.candidate_end == want.candidate_end);
            REQUIRE(got.candidates == want.candidates);
            REQUIRE(got.budget == want.budget);
          }
        }
}

#endif  // ATTNBENCH_HAVE_CUDA
