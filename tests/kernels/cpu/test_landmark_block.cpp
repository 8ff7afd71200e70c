// Tests of the landmark_block method: exact attention when every block is retrieved; otherwise the
// float64 definition (mean key as the block's landmark, topk retrieved blocks plus the local block);
// zero rows; FLOPs; parameters and refusals.
#include <catch2/catch.hpp>
#include <string>

#include "datasets/generators.hpp"
#include "kernels/cpu/dynamic_sparse_oracle.hpp"
#include "support/problems.hpp"

using namespace attnbench;

namespace {

const testing::BlockMethodUnderTest& method() {
  static const testing::BlockMethodUnderTest m{"landmark_block",
                                               "block",
                                               "topk",
                                               testing::BlockScore::mean_key,
                                               /*own_in_budget=*/false,
                                               /*own_without_causal=*/true};
  return m;
}

}  // namespace

TEST_CASE("landmark_block retrieving every block equals exact attention", "[landmark_block][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  testing::check_every_block_is_exact(method(), mask, dtype);
}

TEST_CASE("landmark_block with few blocks equals its float64 definition", "[landmark_block][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  testing::check_few_blocks_match_oracle(method(), mask, {{16, 0}, {16, 1}, {7, 3}, {32, 2}});
}

TEST_CASE("landmark_block bf16 follows its definition on the rounded inputs", "[landmark_block][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  testing::check_bf16_matches_oracle(method(), mask);
}

TEST_CASE("landmark_block with topk = 0 is local-block attention", "[landmark_block][methods]") {
  // Causal, block 8: with no retrieved block query q attends to keys [8·⌊q/8⌋, q] only.
  testing::check_own_block_only(method(), 0);
}

TEST_CASE("landmark_block declares its parameters, FLOPs and refusals", "[landmark_block][methods]") {
  const Method& m = testing::method_named("landmark_block");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::sparse_dynamic);
  REQUIRE(info.params.size() == 2);
  CHECK(info.params[0].name == "block");
  CHECK(info.params[1].name == "topk");
  CHECK(info.params[0].check(0).has_value());  // a block holds at least one key
  CHECK(info.params[1].check(-1).has_value());
  CHECK_FALSE(info.params[1].check(0).has_value());  // local block only

  // Full mask, L 512, block 64, topk 1: every query attends to its local block and one retrieved block
  // (128 keys) and rates the 7 other blocks; plus D adds per key for the representatives.
  const Problem p = testing::make_problem({2, 4, 2, 512, 512, 64, 32}, "full");
  const Params params = complete_params(info.params, {{"block", 64}, {"topk", 1}});
  const double expected = 2.0 * 4 * 512 * (2.0 * (64 + 32) * 128 + 2.0 * 64 * 7) + 2.0 * 2 * 512 * 64;
  CHECK(m.flops(p, params) == Approx(expected));
  CHECK(m.supports(p, params, Device{}));
  testing::check_shared_refusals(m, p, params, testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64));
}
