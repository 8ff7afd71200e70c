// Tests of the block-select kernel's tiling (kernels/cpu/block_select_core.hpp): keys in chunks that
// stay in the core's L2, queries in batches, each query's softmax merged across chunks. The method
// tests run problems small enough for one chunk; here the plan is given tilings that cut the same kind
// of problem into many chunks (block boundaries inside a chunk, blocks cut by a chunk, ragged ends)
// and batches, for each gate and rule, and must equal the float64 definition.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cpu/block_select_core.hpp"
#include "kernels/cpu/dynamic_sparse_oracle.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

template <class Gate>
Tensor run_tiled(const Problem& p, const Inputs& in, const kernels::BlockSelection& s,
                 const kernels::BlockSelectTiling& tiling) {
  Tensor out = make_output(p, p.dtype);
  out.poison();
  kernels::BlockSelectPlan<Gate> plan(p, s, tiling);
  plan.run(in, out);
  return out;
}

struct Rule {
  const char* name;
  testing::BlockScore score;
  bool own_in_budget, own_without_causal;
};

}  // namespace

TEST_CASE("block-select equals its definition when keys come in many chunks and queries in batches",
          "[quest][moba][landmark_block][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const std::vector<Rule> rules = {{"moba", testing::BlockScore::mean_key, true, true},
                                   {"landmark_block", testing::BlockScore::mean_key, false, true},
                                   {"quest", testing::BlockScore::quest_bound, false, false}};
  const std::vector<Shape> shapes = {
      {1, 4, 2, 150, 150, 64, 64},  // GQA
      {1, 4, 1, 257, 257, 32, 48},  // MQA, value dim differs, ragged last block
      {1, 2, 2, 37, 200, 72, 72},   // Lq < Lk
      {1, 2, 1, 200, 120, 64, 40},  // Lq > Lk: under causal the first 80 rows see nothing
  };
  // (block, topk) and tilings: chunks of 16 keys (a block of 40 spans three), 48 (blocks of 16 whole,
  // of 7 cut), 80 (two blocks of 40); batches of 16 or 32 queries.
  const std::vector<std::pair<std::int64_t, std::int64_t>> settings = {{16, 2}, {7, 3}, {40, 2}};
  // Each with all of K tiled up front (prefill) and with the tiles built per chunk where attended
  // (decoding).
  const std::vector<kernels::BlockSelectTiling> tilings = {{16, 16, 0, true},  {48, 32, 0, true},
                                                           {80, 16, 0, true},  {16, 32, 0, false},
                                                           {48, 16, 0, false}, {80, 32, 0, false}};
  std::uint64_t seed = 900;
  testing::NearTieTally tally;
  for (const Rule& rule : rules)
    for (const Shape& shape : shapes)
      for (const auto& [block, topk] : settings)
        for (kernels::BlockSelectTiling tiling : tilings) {
          const Problem p = testing::make_problem(shape, mask);
          const kernels::BlockSelection s = kernels::block_selection(block, topk, rule.own_in_budget, rule.own_without_causal);
          tiling.max_blocks = std::min(s.topk + 1, s.blocks(p));
          REQUIRE(tiling.chunk_keys < p.kv_len);  // several chunks
          INFO(rule.name << " " << p.describe() << " block " << block << " topk " << topk << " chunk "
                         << tiling.chunk_keys << " batch " << tiling.batch_queries << " tile_all_keys "
                         << tiling.tile_all_keys);
          const Inputs in = datasets::gaussian_inputs(p, seed++);
          testing::BlockRule oracle_rule;
          oracle_rule.block = block;
          oracle_rule.topk = topk;
          oracle_rule.score = rule.score;
          oracle_rule.own_in_budget = rule.own_in_budget;
          oracle_rule.own_without_causal = rule.own_without_causal;
          const testing::OracleResult ref = testing::block_oracle(p, in, oracle_rule);
          const Tensor out = rule.score == testing::BlockScore::quest_bound
                                 ? run_tiled<kernels::QuestGate>(p, in, s, tiling)
                                 : run_tiled<kernels::MeanKeyGate>(p, in, s, tiling);
          testing::check_matches_oracle(p, out, ref, tally);
        }
  testing::check_near_ties_rare(tally);
}

TEST_CASE("block-select in bf16 over many chunks follows its definition on the rounded inputs",
          "[quest][moba][methods]") {
  const Problem p = testing::make_problem({1, 4, 2, 200, 200, 64, 64}, "causal", Dtype::bf16);
  const Inputs in = datasets::gaussian_inputs(p, 31);
  const kernels::BlockSelection s = kernels::block_selection(16, 3, /*own_in_budget=*/true, /*own_without_causal=*/true);
  testing::BlockRule rule;
  rule.block = 16;
  rule.topk = 3;
  rule.own_in_budget = true;
  const testing::OracleResult ref = testing::block_oracle(p, in, rule);
  for (const bool tile_all_keys : {true, false}) {
    const kernels::BlockSelectTiling tiling{48, 16, 4, tile_all_keys};
    const Tensor out = run_tiled<kernels::MeanKeyGate>(p, in, s, tiling);
    REQUIRE(out.dtype() == Dtype::bf16);
    CHECK(testing::relative_l2_unambiguous(p, out, ref) <= 1e-2);
  }
}

TEST_CASE("block-select's default tiling keeps a chunk within the L2 and whole blocks in it", "[quest][methods]") {
  const Problem p = testing::make_problem({1, 8, 8, 65536, 65536, 64, 64}, "causal");
  for (const std::int64_t block : {16, 64, 512, 4096}) {
    const kernels::BlockSelection s = kernels::block_selection(block, 64, false, false);
    const kernels::BlockSelectTiling t = kernels::block_select_tiling(p, s, 64);
    INFO("block " << block << " chunk " << t.chunk_keys << " batch " << t.batch_queries);
    CHECK(t.chunk_keys * (64 + 64) * 4 <= std::max<std::int64_t>(kernels::l2_cache_bytes() / 2, 16 * 128 * 4));
    CHECK(t.chunk_keys < p.kv_len);
    CHECK(t.chunk_keys % 16 == 0);
    if (block < t.chunk_keys) CHECK(t.chunk_keys % block == 0);
    CHECK(t.batch_queries >= 16);
    CHECK(t.batch_queries <= 256);
    CHECK(t.max_blocks == std::min<std::int64_t>(65, s.blocks(p)));
    CHECK(t.tile_all_keys);  // prefill: every key is attended many times
  }
  // Decoding: a few queries, one batch, which builds each tile it attends to at most once: tiles are
  // built where attended, however many keys the queries choose.
  const Problem decode = testing::make_problem({1, 8, 1, 4, 65536, 128, 128}, "causal");
  CHECK_FALSE(kernels::block_select_tiling(decode, kernels::block_selection(16, 64, false, false), 128).tile_all_keys);
  CHECK_FALSE(kernels::block_select_tiling(decode, kernels::block_selection(16, 1 << 14, false, false), 128).tile_all_keys);
  // Several batches: tiled up front where together they attend to at least as many keys as there are.
  const Problem chunked = testing::make_problem({1, 8, 1, 600, 65536, 128, 128}, "causal");
  CHECK(kernels::block_select_tiling(chunked, kernels::block_selection(16, 64, false, false), 128).tile_all_keys);
  CHECK_FALSE(kernels::block_select_tiling(chunked, kernels::block_selection(16, 1, false, false), 128).tile_all_keys);
}
