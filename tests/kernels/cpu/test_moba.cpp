// Tests of the moba method: exact attention when every block is chosen; otherwise the float64 MoBA
// definition (mean-key gate, own block counted in topk); zero rows; FLOPs; parameters and refusals.
#include <catch2/catch.hpp>
#include <string>

#include "datasets/generators.hpp"
#include "kernels/cpu/dynamic_sparse_oracle.hpp"
#include "support/problems.hpp"

using namespace attnbench;

namespace {

const testing::BlockMethodUnderTest& method() { return testing::moba_under_test(); }

}  // namespace

TEST_CASE("moba with topk >= blocks equals exact attention", "[moba][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  testing::check_every_block_is_exact(method(), mask, dtype);
}

TEST_CASE("moba with few blocks equals the float64 MoBA definition", "[moba][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  testing::check_few_blocks_match_oracle(method(), mask, {{16, 1}, {16, 2}, {7, 3}, {32, 4}});
}

TEST_CASE("moba bf16 follows the MoBA definition on the rounded inputs", "[moba][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  testing::check_bf16_matches_oracle(method(), mask);
}

TEST_CASE("moba counts its own block in topk, so topk = 1 is block-local attention", "[moba][methods]") {
  // Causal, block 8: with topk 1 query q attends to keys [8·⌊q/8⌋, q] only.
  testing::check_own_block_only(method(), 1);
}

TEST_CASE("moba declares its parameters, FLOPs and refusals", "[moba][methods]") {
  const Method& m = testing::method_named("moba");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::sparse_dynamic);
  REQUIRE(info.params.size() == 2);
  CHECK(info.params[0].name == "block");
  CHECK(info.params[1].name == "topk");
  CHECK(info.params[0].check(0).has_value());  // a block holds at least one key
  CHECK(info.params[1].check(0).has_value());  // the own block is always one of the topk
  CHECK_FALSE(info.params[1].check(1).has_value());

  // Full mask, L 512, block 64, topk 2: every query attends to its own block and one other (128 keys)
  // and gates the 7 other blocks; plus D adds per key for the means.
  const Problem p = testing::make_problem({2, 4, 2, 512, 512, 64, 32}, "full");
  const Params params = complete_params(info.params, {{"block", 64}, {"topk", 2}});
  const double expected = 2.0 * 4 * 512 * (2.0 * (64 + 32) * 128 + 2.0 * 64 * 7) + 2.0 * 2 * 512 * 64;
  CHECK(m.flops(p, params) == Approx(expected));
  CHECK(m.supports(p, params, Device{}));
  testing::check_shared_refusals(m, p, params, testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64));
}
