// Tests of the topk method: exact attention when k reaches the allowed keys; otherwise the softmax over
// exactly the k best keys, against a float64 definition that sorts the scores; zero rows; FLOPs;
// parameters and refusals.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cpu/dynamic_sparse_oracle.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

TEST_CASE("topk with k >= allowed keys equals exact attention", "[topk][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  std::uint64_t seed = 600;
  for (const Shape& s : testing::dynamic_sparse_shapes()) {
    const Problem p = testing::make_problem(s, mask, dtype);
    INFO(p.describe());
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const Tensor ref = testing::run_method("reference", p, in);
    testing::check_matches_reference(testing::run_method("topk", p, in, {{"k", s.kv_len}}), ref, dtype);
  }
}

TEST_CASE("topk with small k equals the softmax over the k best keys", "[topk][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  std::uint64_t seed = 700;
  testing::NearTieTally tally;
  for (const Shape& s : testing::dynamic_sparse_shapes())
    for (const std::int64_t k : {1, 7, 40}) {
      const Problem p = testing::make_problem(s, mask);
      INFO(p.describe() << " k " << k);
      const Inputs in = datasets::gaussian_inputs(p, seed++);
      const testing::OracleResult ref = testing::topk_oracle(p, in, k);
      const Tensor out = testing::run_method("topk", p, in, {{"k", k}});
      testing::check_matches_oracle(p, out, ref, tally);
    }
  testing::check_near_ties_rare(tally);
}

TEST_CASE("topk with k = 1 returns the value of the best key", "[topk][methods]") {
  const Problem p = testing::make_problem({1, 2, 1, 30, 50, 16, 8}, "causal");
  const Inputs in = datasets::gaussian_inputs(p, 9);
  const Tensor out = testing::run_method("topk", p, in, {{"k", 1}});
  const testing::OracleResult ref = testing::topk_oracle(p, in, 1);
  for (std::int64_t i = 0; i < out.numel(); ++i)
    if (!ref.ambiguous[static_cast<std::size_t>(i / 8)])
      REQUIRE(out.get(i) == Approx(ref.out[static_cast<std::size_t>(i)]).margin(1e-6));
}

TEST_CASE("topk breaks exact ties at the boundary towards the earlier keys", "[topk][methods]") {
  // Every key equal, so every score of a query is exactly equal: the kept set must be the first k keys
  // (visible ones under causal), and the output their values' mean.
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const std::int64_t k = GENERATE(1, 5, 12);
  const Problem p = testing::make_problem({1, 2, 1, 20, 20, 8, 4}, mask);
  Inputs in = datasets::gaussian_inputs(p, 31);
  for (std::int64_t key = 1; key < p.kv_len; ++key)
    for (std::int64_t d = 0; d < p.head_dim; ++d) in.k.set(key * p.head_dim + d, in.k.get(d));
  const Tensor out = testing::run_method("topk", p, in, {{"k", k}});
  for (std::int64_t h = 0; h < p.heads; ++h)
    for (std::int64_t q = 0; q < p.q_len; ++q) {
      const std::int64_t visible = p.mask->is_causal() ? q + 1 : p.kv_len, kept = std::min(k, visible);
      for (std::int64_t c = 0; c < p.value_dim; ++c) {
        double mean = 0;
        for (std::int64_t key = 0; key < kept; ++key) mean += in.v.get(key * p.value_dim + c);
        mean /= static_cast<double>(kept);
        INFO("head " << h << " query " << q << " channel " << c);
        REQUIRE(out.get((h * p.q_len + q) * p.value_dim + c) == Approx(mean).margin(1e-6));
      }
    }
}

TEST_CASE("topk bf16 follows the definition on the rounded inputs", "[topk][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Problem p = testing::make_problem({1, 4, 2, 150, 150, 64, 64}, mask, Dtype::bf16);
  const Inputs in = datasets::gaussian_inputs(p, 19);
  const testing::OracleResult ref = testing::topk_oracle(p, in, 20);
  const Tensor out = testing::run_method("topk", p, in, {{"k", 20}});
  REQUIRE(out.dtype() == Dtype::bf16);
  CHECK(testing::relative_l2_unambiguous(p, out, ref) <= 1e-2);
}

TEST_CASE("topk declares its parameters, FLOPs and refusals", "[topk][methods]") {
  const Method& m = testing::method_named("topk");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::sparse_dynamic);
  REQUIRE(info.params.size() == 1);
  CHECK(info.params[0].name == "k");
  CHECK(info.params[0].default_value == 64);
  CHECK(info.params[0].check(0).has_value());
  CHECK_FALSE(info.params[0].check(1).has_value());

  // Causal L 256, k 64: query q scores q + 1 keys and weights min(64, q + 1) of them.
  const Problem p = testing::make_problem({1, 4, 2, 256, 256, 64, 32}, "causal");
  const Params params = complete_params(info.params, json::object());
  double scored = 0, kept = 0;
  for (int q = 0; q < 256; ++q) {
    scored += q + 1;
    kept += std::min(64, q + 1);
  }
  CHECK(m.flops(p, params) == Approx(4.0 * (2.0 * 64 * scored + 2.0 * 32 * kept)));
  CHECK(m.supports(p, params, Device{}));
  testing::check_shared_refusals(m, p, params, testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64));
}
