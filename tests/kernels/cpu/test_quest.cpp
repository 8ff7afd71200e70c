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

testing::BlockRule quest_rule(std::int64_t page, std::int64_t pages) {
  testing::BlockRule r;
  r.block = page;
  r.topk = pages;
  r.score = testing::BlockScore::quest_bound;
  r.own_in_budget = false;
  r.own_without_causal = false;
  return r;
}

}  // namespace

TEST_CASE("quest with every page chosen equals exact attention", "[quest][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  std::uint64_t seed = 300;
  for (const Shape& s : shapes())
    for (const std::int64_t block : {1, 7, 64}) {
      const Problem p = testing::make_problem(s, mask, dtype);
      INFO(p.describe() << " block " << block);
      const Inputs in = datasets::gaussian_inputs(p, seed++);
      const Tensor ref = testing::run_method("reference", p, in);
      const Tensor out = testing::run_method("quest", p, in, {{"page", block}, {"pages", 1 << 20}});
      const double err = testing::relative_l2(out, ref);
      INFO("relative L2 error " << err);
      CHECK(err <= (dtype == Dtype::f32 ? 1e-5 : 1e-2));
      for (std::int64_t i = 0; i < out.numel(); ++i)
        if (ref.get(i) == 0.0) REQUIRE(out.get(i) == 0.0);
    }
}

TEST_CASE("quest with few pages equals the float64 Quest definition", "[quest][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  std::uint64_t seed = 400;
  std::int64_t compared_total = 0, ambiguous_total = 0;
  for (const Shape& s : shapes())
    for (const auto& [block, topk] : std::vector<std::pair<std::int64_t, std::int64_t>>{{16, 1}, {16, 2}, {7, 3}, {32, 4}, {4, 0}}) {
      if (topk == 0 && mask == "full") continue;  // refused: nothing to attend to
      const Problem p = testing::make_problem(s, mask);
      INFO(p.describe() << " page " << block << " pages " << topk);
      const Inputs in = datasets::gaussian_inputs(p, seed++);
      const testing::OracleResult ref = testing::block_oracle(p, in, quest_rule(block, topk));
      const Tensor out = testing::run_method("quest", p, in, {{"page", block}, {"pages", topk}});
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

TEST_CASE("quest bf16 follows the Quest definition on the rounded inputs", "[quest][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Problem p = testing::make_problem({1, 4, 2, 200, 200, 64, 64}, mask, Dtype::bf16);
  const Inputs in = datasets::gaussian_inputs(p, 17);
  const testing::OracleResult ref = testing::block_oracle(p, in, quest_rule(16, 3));
  const Tensor out = testing::run_method("quest", p, in, {{"page", 16}, {"pages", 3}});
  REQUIRE(out.dtype() == Dtype::bf16);
  CHECK(testing::relative_l2_unambiguous(p, out, ref) <= 1e-2);
}

TEST_CASE("quest page bound is at least every score in the page", "[quest][methods]") {
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  const Problem p = testing::make_problem({1, 4, 2, 64, 300, 48, 48}, "full", dtype);
  const Inputs in = datasets::gaussian_inputs(p, 77);
  const std::int64_t D = p.head_dim;
  std::int64_t checked = 0;
  double tightest = INFINITY;  // smallest bound − max score seen: the bound is not vacuous
  for (const std::int64_t page : {1, 5, 16, 64}) {
    std::vector<float> mn(static_cast<std::size_t>(D)), mx(static_cast<std::size_t>(D)), q(static_cast<std::size_t>(D));
    for (std::int64_t kvh = 0; kvh < p.kv_heads; ++kvh)
      for (std::int64_t k0 = 0; k0 < p.kv_len; k0 += page) {
        const std::int64_t count = std::min(page, p.kv_len - k0);
        if (dtype == Dtype::f32)
          kernels::page_min_max(in.k.f32() + (kvh * p.kv_len + k0) * D, count, D, mn.data(), mx.data());
        else
          kernels::page_min_max(in.k.bf16() + (kvh * p.kv_len + k0) * D, count, D, mn.data(), mx.data());
        for (std::int64_t h = kvh * p.group_size(); h < (kvh + 1) * p.group_size(); ++h)
          for (std::int64_t i = 0; i < p.q_len; ++i) {
            for (std::int64_t d = 0; d < D; ++d) q[d] = static_cast<float>(testing::q_elem(p, in, 0, h, i, d));
            const double bound = kernels::quest_upper_bound(q.data(), mn.data(), mx.data(), D);
            double best = -INFINITY;
            for (std::int64_t k = k0; k < k0 + count; ++k) {
              double dot = 0;
              for (std::int64_t d = 0; d < D; ++d) dot += q[d] * testing::k_elem(p, in, 0, kvh, k, d);
              best = std::max(best, dot);
            }
            INFO("page " << page << " at " << k0 << " head " << h << " query " << i);
            REQUIRE(bound >= best - 1e-5 * (1.0 + std::abs(best)));
            if (page == 1) REQUIRE(bound == Approx(best).epsilon(1e-5).margin(1e-5));  // one key: the bound is its score
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
  const Problem p = testing::make_problem({1, 2, 2, 40, 40, 32, 32}, "causal");
  const Inputs in = datasets::gaussian_inputs(p, 21);
  const Tensor out = testing::run_method("quest", p, in, {{"page", 8}, {"pages", 0}});
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

  Problem windowed = p;
  windowed.mask = std::make_shared<const testing::NarrowWindowMask>(p.mask_shape());
  const Support no_mask = m.supports(windowed, params, Device{});
  CHECK_FALSE(no_mask);
  CHECK_THAT(no_mask.reason, Catch::Contains("full and causal masks only"));
  const Support no_f64 = m.supports(testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64), params, Device{});
  CHECK_FALSE(no_f64);
  CHECK_THAT(no_f64.reason, Catch::Contains("fp64"));
  CHECK_FALSE(m.supports(p, params, Device{Device::Kind::cuda, 0}));

  const Params none = complete_params(info.params, {{"page", 64}, {"pages", 0}});
  const Support empty = m.supports(p, none, Device{});
  CHECK_FALSE(empty);
  CHECK_THAT(empty.reason, Catch::Contains("pages >= 1"));
  CHECK(m.supports(testing::make_problem({1, 1, 1, 64, 64, 64, 64}, "causal"), none, Device{}));
}
