// Tests of the baselines: the float64 reference against hand-computed values, and dense against the
// reference, including its refusal of a score matrix that would not fit.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "attnbench/task.hpp"
#include "datasets/generators.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

TEST_CASE("reference matches a case computed by hand", "[reference]") {
  // L = 2, D = Dv = 1, scale 1: q = (1, 2), k = (0, 1), v = (10, 20).
  // Full:   row 0 scores (0, 1) -> o = (10 + 20e)/(1 + e);  row 1 scores (0, 2) -> (10 + 20e²)/(1 + e²).
  // Causal: row 0 sees key 0 only -> o = 10;  row 1 as under full.
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  Problem p = testing::make_problem({1, 1, 1, 2, 2, 1, 1}, mask, Dtype::f32);
  p.scale = 1.0;
  Inputs in{Tensor(Dtype::f32, {1, 1, 2, 1}), Tensor(Dtype::f32, {1, 1, 2, 1}), Tensor(Dtype::f32, {1, 1, 2, 1})};
  in.q.set(0, 1);
  in.q.set(1, 2);
  in.k.set(0, 0);
  in.k.set(1, 1);
  in.v.set(0, 10);
  in.v.set(1, 20);
  const Tensor out = testing::run_method("reference", p, in);
  REQUIRE(out.dtype() == Dtype::f64);
  const double e = std::exp(1.0);
  const double row0 = mask == "full" ? (10 + 20 * e) / (1 + e) : 10.0;
  const double row1 = (10 + 20 * e * e) / (1 + e * e);
  CHECK(out.get(0) == Approx(row0).epsilon(1e-14));
  CHECK(out.get(1) == Approx(row1).epsilon(1e-14));
}

TEST_CASE("reference handles GQA and rows that see no key", "[reference]") {
  // Two query heads share one kv head, so their outputs are equal when their queries are.
  Problem p = testing::make_problem({1, 2, 1, 3, 2, 2, 2}, "causal", Dtype::f32);
  Inputs in = datasets::gaussian_inputs(p, 1);
  for (std::int64_t i = 0; i < 6; ++i) in.q.set(6 + i, in.q.get(i));
  const Tensor out = testing::run_method("reference", p, in);
  // Lq = 3 > Lk = 2: query 0 sits at position -1 and sees nothing.
  CHECK(out.get(0) == 0.0);
  CHECK(out.get(1) == 0.0);
  // Query 1 sees key 0 only: its output is v[0].
  CHECK(out.get(2) == Approx(in.v.get(0)).epsilon(1e-12));
  CHECK(out.get(3) == Approx(in.v.get(1)).epsilon(1e-12));
  for (std::int64_t i = 0; i < 6; ++i) CHECK(out.get(6 + i) == out.get(i));
}

TEST_CASE("dense matches the float64 reference", "[dense]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  const double tolerance = dtype == Dtype::f32 ? 1e-5 : 1e-2;
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1, 1, 64, 64},       {2, 2, 2, 7, 7, 40, 40},    {1, 8, 2, 100, 100, 64, 64},
      {1, 4, 1, 257, 257, 128, 128}, {1, 2, 2, 37, 100, 72, 72}, {1, 2, 1, 100, 37, 64, 40},
  };
  std::uint64_t seed = dtype == Dtype::f32 ? 21 : 31;
  for (const Shape& s : shapes) {
    const Problem p = testing::make_problem(s, mask, dtype);
    INFO(p.describe() << " seed " << seed);
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const Tensor ref = testing::run_method("reference", p, in);
    const Tensor out = testing::run_method("dense", p, in);
    REQUIRE(out.dtype() == dtype);
    CHECK(testing::relative_l2(out, ref) <= tolerance);
    for (std::int64_t i = 0; i < out.numel(); ++i)
      if (ref.get(i) == 0.0) REQUIRE(out.get(i) == 0.0);
  }
}

TEST_CASE("dense refuses a score matrix over its limit, saying how many bytes", "[dense]") {
  const Method& dense = testing::method_named("dense");
  const auto specs = dense.info().params;
  // B1 H32 L65536: 32·65536²·4 bytes = 512 GiB, over any default limit.
  const Problem big = testing::make_problem({1, 32, 32, 65536, 65536, 64, 64}, "causal");
  const Support s = dense.supports(big, complete_params(specs, json::object()), Device{});
  CHECK_FALSE(s.ok);
  CHECK(s.reason.find("512.0 GiB") != std::string::npos);
  CHECK(s.reason.find("bytes") != std::string::npos);
  CHECK(s.reason.find("549755813888") != std::string::npos);

  // The parameter lowers the limit: 1 MiB of scores (L = 512) against a 0.0001 GiB limit.
  const Problem small = testing::make_problem({1, 1, 1, 512, 512, 64, 64}, "full");
  CHECK(dense.supports(small, complete_params(specs, json::object()), Device{}));
  const Support tight = dense.supports(small, complete_params(specs, {{"max_score_gib", 0.0001}}), Device{});
  CHECK_FALSE(tight.ok);
  CHECK(tight.reason.find("max_score_gib") != std::string::npos);
}

TEST_CASE("a sampled reference computes every N-th row and the last exactly, and fidelity compares only those",
          "[reference][fidelity]") {
  const Problem p = testing::make_problem({2, 4, 2, 37, 37, 32, 32}, "causal");
  const Inputs in = datasets::gaussian_inputs(p, 21);
  const Tensor full = testing::run_method("reference", p, in);
  const Tensor sampled = testing::run_method("reference", p, in, {{"row_stride", 5}});
  std::int64_t computed_rows = 0;
  for (std::int64_t bh = 0; bh < p.batch * p.heads; ++bh)
    for (std::int64_t q = 0; q < p.q_len; ++q) {
      const bool kept = q % 5 == 0 || q == p.q_len - 1;
      computed_rows += kept;
      for (std::int64_t c = 0; c < p.value_dim; ++c) {
        const std::int64_t i = (bh * p.q_len + q) * p.value_dim + c;
        if (kept)
          REQUIRE(sampled.get(i) == full.get(i));
        else
          REQUIRE(std::isnan(sampled.get(i)));
      }
    }
  CHECK(computed_rows == p.batch * p.heads * 9);  // rows 0, 5, …, 35 and 36

  // fidelity against the sampled oracle sees only the computed rows: an error planted in a skipped row
  // is invisible, one in a computed row is not, and an output NaN anywhere still fails.
  Tensor out = testing::run_method("flash", p, in);
  const double base = fidelity(out, sampled).rel_l2;
  CHECK(base < 1e-5);
  CHECK(base == Approx(testing::relative_l2(out, full)).margin(1e-6));
  Tensor skipped_row_wrong = testing::run_method("flash", p, in);
  skipped_row_wrong.set(3 * p.value_dim, 100.0);  // (b0, h0, q3): not sampled
  CHECK(fidelity(skipped_row_wrong, sampled).rel_l2 == Approx(base).margin(1e-12));
  Tensor sampled_row_wrong = testing::run_method("flash", p, in);
  sampled_row_wrong.set(5 * p.value_dim, 100.0);  // (b0, h0, q5): sampled
  CHECK(fidelity(sampled_row_wrong, sampled).rel_l2 > 0.1);
  skipped_row_wrong.set(3 * p.value_dim, std::nan(""));
  CHECK(std::isnan(fidelity(skipped_row_wrong, sampled).rel_l2));
}

// The oracle written the plainest way there is, in long double, one row at a time: what the blocked
// float64 reference must agree with to ~1e-13.
namespace {
std::vector<long double> plain_attention(const Problem& p, const Inputs& in) {
  std::vector<long double> out(static_cast<std::size_t>(p.batch * p.heads * p.q_len * p.value_dim), 0.0L);
  for (std::int64_t b = 0; b < p.batch; ++b)
    for (std::int64_t h = 0; h < p.heads; ++h)
      for (std::int64_t q = 0; q < p.q_len; ++q) {
        const std::int64_t kvh = h / (p.heads / p.kv_heads);
        std::vector<long double> s(static_cast<std::size_t>(p.kv_len));
        long double mx = -INFINITY;
        for (std::int64_t k = 0; k < p.kv_len; ++k) {
          if (!p.mask->allowed(b, h, q, k)) continue;
          long double dot = 0;
          for (std::int64_t d = 0; d < p.head_dim; ++d)
            dot += static_cast<long double>(in.q.get(((b * p.heads + h) * p.q_len + q) * p.head_dim + d)) *
                   in.k.get(((b * p.kv_heads + kvh) * p.kv_len + k) * p.head_dim + d);
          s[k] = dot * static_cast<long double>(p.scale);
          mx = std::max(mx, s[k]);
        }
        if (mx == -INFINITY) continue;  // no key: zeros
        long double den = 0;
        for (std::int64_t k = 0; k < p.kv_len; ++k)
          if (p.mask->allowed(b, h, q, k)) den += std::exp(s[k] - mx);
        for (std::int64_t k = 0; k < p.kv_len; ++k) {
          if (!p.mask->allowed(b, h, q, k)) continue;
          const long double w = std::exp(s[k] - mx) / den;
          for (std::int64_t c = 0; c < p.value_dim; ++c)
            out[static_cast<std::size_t>(((b * p.heads + h) * p.q_len + q) * p.value_dim + c)] +=
                w * in.v.get(((b * p.kv_heads + kvh) * p.kv_len + k) * p.value_dim + c);
        }
      }
  return out;
}
}  // namespace

TEST_CASE("reference equals attention computed plainly in long double, under every kind of mask",
          "[reference]") {
  struct Case {
    Shape shape;
    std::string mask;
    json params;
  };
  const std::vector<Case> cases = {
      {{2, 4, 2, 37, 37, 32, 32}, "causal", json::object()},
      {{1, 3, 1, 50, 50, 16, 24}, "full", json::object()},
      {{1, 2, 2, 21, 45, 8, 8}, "causal", json::object()},  // cross: bottom-right aligned
      {{1, 2, 1, 45, 21, 8, 8}, "causal", json::object()},  // early queries see nothing
      {{1, 2, 2, 64, 64, 16, 16}, "sliding_window", {{"window", 9}}},
      {{2, 2, 1, 70, 70, 16, 16}, "document", {{"doc_lens", "13,30,5"}}},
      {{1, 2, 2, 96, 96, 8, 8}, "bigbird", {{"block", 8}, {"random", 2}, {"seed", 4}}},
      {{1, 1, 1, 200, 200, 8, 8}, "dilated", {{"window", 7}, {"dilation", 3}}},
  };
  const auto stride = GENERATE(1, 3);
  for (const Case& c : cases) {
    Problem p = testing::make_problem(c.shape, "full");
    p.mask = make_mask(c.mask, c.params, p.mask_shape());
    const Inputs in = datasets::gaussian_inputs(p, 17);
    const Tensor out = testing::run_method("reference", p, in, {{"row_stride", stride}});
    const std::vector<long double> want = plain_attention(p, in);
    INFO(c.mask << " " << p.describe() << " row_stride " << stride);
    double worst = 0;
    std::int64_t checked = 0;
    for (std::int64_t bh = 0; bh < p.batch * p.heads; ++bh)
      for (std::int64_t q = 0; q < p.q_len; ++q)
        for (std::int64_t v = 0; v < p.value_dim; ++v) {
          const std::int64_t i = (bh * p.q_len + q) * p.value_dim + v;
          if (q % stride != 0 && q != p.q_len - 1) {
            REQUIRE(std::isnan(out.get(i)));
            continue;
          }
          worst = std::max(worst, static_cast<double>(std::fabs(out.get(i) - want[static_cast<std::size_t>(i)])));
          ++checked;
        }
    CHECK(worst < 1e-13);
    CHECK(checked > 0);
  }
}
