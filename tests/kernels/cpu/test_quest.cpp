// Tests of the quest method: its page bound is an upper bound on every score in the page (property
// test); exact attention when every page is chosen; otherwise the float64 Quest definition (top pages
// by bound, plus the current page under causal); zero rows; FLOPs; parameters and refusals.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cpu/block_select_core.hpp"
#include "kernels/cpu/dynamic_sparse_oracle.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

const testing::BlockMethodUnderTest& method() {
  static const testing::BlockMethodUnderTest m{"quest",
                                               "page",
                                               "pages",
                                               testing::BlockScore::quest_bound,
                                               /*own_in_budget=*/false,
                                               /*own_without_causal=*/false};
  return m;
}

}  // namespace

TEST_CASE("quest with every page chosen equals exact attention", "[quest][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  testing::check_every_block_is_exact(method(), mask, dtype);
}

TEST_CASE("quest with few pages equals the float64 Quest definition", "[quest][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  testing::check_few_blocks_match_oracle(method(), mask, {{16, 1}, {16, 2}, {7, 3}, {32, 4}, {4, 0}});
}

TEST_CASE("quest bf16 follows the Quest definition on the rounded inputs", "[quest][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  testing::check_bf16_matches_oracle(method(), mask);
}

TEST_CASE("quest page bound is at least every score in the page", "[quest][methods]") {
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  const Problem p = testing::make_problem({1, 4, 2, 64, 300, 48, 48}, "full", dtype);
  const Inputs in = datasets::gaussian_inputs(p, 77);
  const std::int64_t D = p.head_dim;
  std::int64_t checked = 0;
  double tightest = INFINITY;  // smallest bound − max score seen: the bound is not vacuous
  for (const std::int64_t page : {1, 5, 16, 64}) {
    // The method's own pieces: the page summary [max; min] and the query features [q⁺, q⁻], whose
    // product is its rating of the page.
    std::vector<float> column(static_cast<std::size_t>(2 * D)), q(static_cast<std::size_t>(D)),
        features(static_cast<std::size_t>(2 * D));
    for (std::int64_t kvh = 0; kvh < p.kv_heads; ++kvh)
      for (std::int64_t k0 = 0; k0 < p.kv_len; k0 += page) {
        const std::int64_t count = std::min(page, p.kv_len - k0);
        if (dtype == Dtype::f32)
          kernels::quest_page_summary(in.k.f32() + (kvh * p.kv_len + k0) * D, count, D, column.data());
        else
          kernels::quest_page_summary(in.k.bf16() + (kvh * p.kv_len + k0) * D, count, D, column.data());
        for (std::int64_t h = kvh * p.group_size(); h < (kvh + 1) * p.group_size(); ++h)
          for (std::int64_t i = 0; i < p.q_len; ++i) {
            for (std::int64_t d = 0; d < D; ++d) q[d] = static_cast<float>(testing::q_elem(p, in, 0, h, i, d));
            kernels::quest_features(q.data(), D, features.data());
            double bound = 0;
            for (std::int64_t f = 0; f < 2 * D; ++f) bound += double{features[f]} * column[f];
            double best = -INFINITY;
            for (std::int64_t k = k0; k < k0 + count; ++k) {
              double dot = 0;
              for (std::int64_t d = 0; d < D; ++d) dot += q[d] * testing::k_elem(p, in, 0, kvh, k, d);
              best = std::max(best, dot);
            }
            INFO("page " << page << " at " << k0 << " head " << h << " query " << i);
            REQUIRE(bound >= best - 1e-5 * (1.0 + std::abs(best)));
            if (page == 1)
              REQUIRE(bound == Approx(best).epsilon(1e-5).margin(1e-5));  // one key: the bound is its score
            tightest = std::min(tightest, bound - best);
            ++checked;
          }
      }
  }
  CHECK(checked > 10000);
  CHECK(tightest < 1e-3);
}

TEST_CASE("quest always attends to the current page under causal", "[quest][methods]") {
  // pages 0: query q attends to keys [8·⌊q/8⌋, q] only.
  testing::check_own_block_only(method(), 0);
}

TEST_CASE("quest declares its parameters, FLOPs and refusals", "[quest][methods]") {
  const Method& m = testing::method_named("quest");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::sparse_dynamic);
  REQUIRE(info.params.size() == 2);
  CHECK(info.params[0].name == "page");
  CHECK(info.params[1].name == "pages");
  CHECK(info.params[0].check(0).has_value());  // a page holds at least one key
  CHECK(info.params[1].check(-1).has_value());

  // Full mask, L 512, page 64, pages 2: every query attends to 2 pages (128 keys) after bounding all 8
  // (4·D each); plus 2·D comparisons per key for the page min/max.
  const Problem p = testing::make_problem({2, 4, 2, 512, 512, 64, 32}, "full");
  const Params params = complete_params(info.params, {{"page", 64}, {"pages", 2}});
  const double expected = 2.0 * 4 * 512 * (2.0 * (64 + 32) * 128 + 4.0 * 64 * 8) + 2.0 * 2.0 * 2 * 512 * 64;
  CHECK(m.flops(p, params) == Approx(expected));
  CHECK(m.supports(p, params, Device{}));
  testing::check_shared_refusals(m, p, params, testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64));

  const Params none = complete_params(info.params, {{"page", 64}, {"pages", 0}});
  const Support empty = m.supports(p, none, Device{});
  CHECK_FALSE(empty);
  CHECK_THAT(empty.reason, Catch::Contains("pages >= 1"));
  CHECK(m.supports(testing::make_problem({1, 1, 1, 64, 64, 64, 64}, "causal"), none, Device{}));
}
