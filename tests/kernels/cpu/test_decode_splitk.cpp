// Tests of the decode_splitk method (flash-decoding): equal to the float64 reference for any number of
// splits (1, 2, 3, 7, kv_len, auto), GQA, causal with several queries, a 128K-key cache; FLOPs,
// parameters and refusals.
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
      {1, 1, 1, 1, 1, 64, 64},     // a single query and key
      {2, 8, 2, 1, 100, 64, 64},   // one token, GQA group of 4, batch 2
      {1, 4, 1, 4, 257, 32, 48},   // MQA, 4 queries, value dim differs
      {1, 6, 3, 16, 300, 72, 72},  // max_queries queries
      {1, 2, 2, 7, 7, 40, 40},     // as many queries as keys
      {1, 2, 1, 12, 5, 16, 16},    // Lq > Lk: under causal the first 7 rows see nothing
  };
  return all;
}

}  // namespace

TEST_CASE("decode_splitk equals the reference for any number of splits", "[decode_splitk][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  std::uint64_t seed = 900;
  for (const Shape& s : shapes()) {
    const Problem p = testing::make_problem(s, mask, dtype);
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const Tensor ref = testing::run_method("reference", p, in);
    for (const std::int64_t splits :
         {std::int64_t{0}, std::int64_t{1}, std::int64_t{2}, std::int64_t{3}, std::int64_t{7}, s.kv_len}) {
      if (splits > s.kv_len) continue;
      INFO(p.describe() << " splits " << splits);
      testing::check_matches_reference(testing::run_method("decode_splitk", p, in, {{"splits", splits}}), ref, dtype);
    }
  }
}

TEST_CASE("decode_splitk on a 128K-key cache", "[decode_splitk][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Problem p = testing::make_problem({1, 4, 1, 3, 131072, 16, 16}, mask);
  const Inputs in = datasets::gaussian_inputs(p, 41);
  const Tensor ref = testing::run_method("reference", p, in);
  for (const std::int64_t splits : {0, 7, 64}) {
    INFO(p.describe() << " splits " << splits);
    const Tensor out = testing::run_method("decode_splitk", p, in, {{"splits", splits}});
    const double err = testing::relative_l2(out, ref);
    INFO("relative L2 error " << err);
    CHECK(err <= 1e-5);
  }
}

TEST_CASE("decode_splitk declares its parameters, FLOPs and refusals", "[decode_splitk][methods]") {
  const Method& m = testing::method_named("decode_splitk");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::decode);
  REQUIRE(info.params.size() == 2);
  CHECK(info.params[0].name == "splits");
  CHECK(info.params[0].default_value == 0);
  CHECK(info.params[1].name == "max_queries");
  CHECK(info.params[1].default_value == 16);
  CHECK(info.params[0].check(-1).has_value());
  CHECK(info.params[1].check(0).has_value());

  // One token against 4096 keys, 4 splits: the dense count plus 2·Dv per split for the merge.
  const Problem p = testing::make_problem({1, 8, 2, 1, 4096, 64, 64}, "causal");
  const Params four = complete_params(info.params, {{"splits", 4}});
  CHECK(m.flops(p, four) == Approx(attention_flops(p) + 2.0 * 8 * 64 * 4));
  CHECK(m.supports(p, four, Device{}));

  const Problem prefill = testing::make_problem({1, 8, 2, 17, 4096, 64, 64}, "causal");
  const Params defaults = complete_params(info.params, json::object());
  const Support too_many = m.supports(prefill, defaults, Device{});
  CHECK_FALSE(too_many);
  CHECK_THAT(too_many.reason, Catch::Contains("q_len (17) exceeds max_queries (16)"));
  CHECK(m.supports(prefill, complete_params(info.params, {{"max_queries", 32}}), Device{}));

  const Problem short_cache = testing::make_problem({1, 2, 2, 1, 5, 64, 64}, "full");
  const Support too_split = m.supports(short_cache, complete_params(info.params, {{"splits", 6}}), Device{});
  CHECK_FALSE(too_split);
  CHECK_THAT(too_split.reason, Catch::Contains("splits (6) must not exceed kv_len (5)"));

  testing::check_shared_refusals(m, p, defaults, testing::make_problem({1, 1, 1, 1, 8, 64, 64}, "full", Dtype::f64));
}
