// Tests of the landmark_block method: exact attention when every block is retrieved; otherwise the
// float64 definition (mean key as the block's landmark, topk retrieved blocks plus the local block);
// zero rows; FLOPs; parameters and refusals.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cpu/dynamic_sparse_oracle.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> all = {
      {1, 1, 1, 1, 1, 64, 64},      // a single query and key
      {2, 2, 2, 7, 7, 40, 40},      // odd length, batch 2
      {1, 8, 2, 100, 100, 64, 64},  // GQA
      {1, 4, 1, 257, 257, 32, 48},  // MQA, value dim differs, ragged last block
      {1, 2, 2, 37, 100, 72, 72},   // Lq < Lk (bottom-right aligned)
      {1, 2, 1, 100, 37, 64, 40},   // Lq > Lk: under causal the first 63 rows see nothing
      {1, 2, 2, 5, 300, 64, 64},    // decode-like: few queries, long cache
  };
  return all;
}

testing::BlockRule landmark_rule(std::int64_t block, std::int64_t topk) {
  testing::BlockRule r;
  r.block = block;
  r.topk = topk;
  r.score = testing::BlockScore::mean_key;
  r.own_in_budget = false;
  r.own_without_causal = true;
  return r;
}

}  // namespace

TEST_CASE("landmark_block retrieving every block equals exact attention", "[landmark_block][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  std::uint64_t seed = 300;
  for (const Shape& s : shapes())
    for (const std::int64_t block : {1, 7, 64}) {
      const Problem p = testing::make_problem(s, mask, dtype);
      INFO(p.describe() << " block " << block);
      const Inputs in = datasets::gaussian_inputs(p, seed++);
      const Tensor ref = testing::run_method("reference", p, in);
      const Tensor out = testing::run_method("landmark_block", p, in, {{"block", block}, {"topk", 1 << 20}});
      const double err = testing::relative_l2(out, ref);
      INFO("relative L2 error " << err);
      CHECK(err <= (dtype == Dtype::f32 ? 1e-5 : 1e-2));
      for (std::int64_t i = 0; i < out.numel(); ++i)
        if (ref.get(i) == 0.0) REQUIRE(out.get(i) == 0.0);
    }
}

TEST_CASE("landmark_block with few blocks equals its float64 definition", "[landmark_block][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  std::uint64_t seed = 400;
  std::int64_t compared_total = 0, ambiguous_total = 0;
  for (const Shape& s : shapes())
    for (const auto& [block, topk] : std::vector<std::pair<std::int64_t, std::int64_t>>{{16, 0}, {16, 1}, {7, 3}, {32, 2}}) {
      const Problem p = testing::make_problem(s, mask);
      INFO(p.describe() << " block " << block << " topk " << topk);
      const Inputs in = datasets::gaussian_inputs(p, seed++);
      const testing::OracleResult ref = testing::block_oracle(p, in, landmark_rule(block, topk));
      const Tensor out = testing::run_method("landmark_block", p, in, {{"block", block}, {"topk", topk}});
      std::int64_t compared = 0;
      const double err = testing::relative_l2_unambiguous(p, out, ref, &compared);
      INFO("relative L2 error " << err << " over " << compared << " rows");
      CHECK(err <= 1e-5);
      compared_total += compared;
      ambiguous_total += testing::count_ambiguous(ref);
    }
  INFO(ambiguous_total << " near-tie rows skipped of " << compared_total + ambiguous_total);
  CHECK(ambiguous_total * 100 <= compared_total + ambiguous_total);  // near-ties are rare
}

TEST_CASE("landmark_block bf16 follows its definition on the rounded inputs", "[landmark_block][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Problem p = testing::make_problem({1, 4, 2, 200, 200, 64, 64}, mask, Dtype::bf16);
  const Inputs in = datasets::gaussian_inputs(p, 17);
  const testing::OracleResult ref = testing::block_oracle(p, in, landmark_rule(16, 3));
  const Tensor out = testing::run_method("landmark_block", p, in, {{"block", 16}, {"topk", 3}});
  REQUIRE(out.dtype() == Dtype::bf16);
  CHECK(testing::relative_l2_unambiguous(p, out, ref) <= 1e-2);
}

TEST_CASE("landmark_block with topk = 0 is local-block attention", "[landmark_block][methods]") {
  // Causal, block 8: with no retrieved block query q attends to keys [8·⌊q/8⌋, q] only.
  const Problem p = testing::make_problem({1, 2, 2, 40, 40, 32, 32}, "causal");
  const Inputs in = datasets::gaussian_inputs(p, 21);
  const Tensor out = testing::run_method("landmark_block", p, in, {{"block", 8}, {"topk", 0}});
  testing::OracleResult local;
  local.out.assign(static_cast<std::size_t>(out.numel()), 0.0);
  for (std::int64_t h = 0; h < 2; ++h)
    for (std::int64_t q = 0; q < 40; ++q) {
      std::vector<std::int64_t> keys;
      for (std::int64_t k = q / 8 * 8; k <= q; ++k) keys.push_back(k);
      testing::attend_exactly(p, in, 0, h, q, keys, local.out);
    }
  local.ambiguous.assign(80, false);
  CHECK(testing::relative_l2_unambiguous(p, out, local) <= 1e-5);
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

  Problem windowed = p;
  windowed.mask = std::make_shared<const testing::NarrowWindowMask>(p.mask_shape());
  const Support no_mask = m.supports(windowed, params, Device{});
  CHECK_FALSE(no_mask);
  CHECK_THAT(no_mask.reason, Catch::Contains("full and causal masks only"));
  const Support no_f64 = m.supports(testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64), params, Device{});
  CHECK_FALSE(no_f64);
  CHECK_THAT(no_f64.reason, Catch::Contains("fp64"));
  CHECK_FALSE(m.supports(p, params, Device{Device::Kind::cuda, 0}));
}
