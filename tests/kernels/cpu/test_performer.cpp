// Tests of the performer method (FAVOR+): its error against exact softmax attention falls as the number
// of random features grows; its causal prefix path equals the non-causal path on each query's visible
// keys (the masked quadratic form of the same features); determinism in the seed; its refusals.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cpu/linear_forms.hpp"
#include "support/problems.hpp"

using namespace attnbench;

namespace {

// Inputs scaled by 0.5 so that scale·qᵀk stays moderate: the FAVOR+ variance grows like exp(|q|²+|k|²).
Inputs moderate_inputs(const Problem& p, std::uint64_t seed) {
  Inputs in = datasets::gaussian_inputs(p, seed);
  testing::scale_tensor(in.q, 0.5);
  testing::scale_tensor(in.k, 0.5);
  return in;
}

// Query i of every head with the keys it sees under a causal mask (0..i+offset), as a cross-attention
// problem with one query: its non-causal output is φ(q_i)ᵀ Σ_{j visible} φ(k_j)v_jᵀ / φ(q_i)ᵀ Σ φ(k_j).
Tensor visible_prefix_output(const Problem& p, const Inputs& in, std::int64_t i, const json& params) {
  const std::int64_t keys = i + p.kv_len - p.q_len + 1;
  Problem one = testing::make_problem({p.batch, p.heads, p.kv_heads, 1, keys, p.head_dim, p.value_dim}, "full");
  one.scale = p.scale;
  Inputs part{Tensor(Dtype::f32, {p.batch, p.heads, 1, p.head_dim}),
              Tensor(Dtype::f32, {p.batch, p.kv_heads, keys, p.head_dim}),
              Tensor(Dtype::f32, {p.batch, p.kv_heads, keys, p.value_dim})};
  for (std::int64_t bh = 0; bh < p.batch * p.heads; ++bh)
    for (std::int64_t d = 0; d < p.head_dim; ++d)
      part.q.set(bh * p.head_dim + d, in.q.get((bh * p.q_len + i) * p.head_dim + d));
  for (std::int64_t bg = 0; bg < p.batch * p.kv_heads; ++bg)
    for (std::int64_t j = 0; j < keys; ++j) {
      for (std::int64_t d = 0; d < p.head_dim; ++d)
        part.k.set((bg * keys + j) * p.head_dim + d, in.k.get((bg * p.kv_len + j) * p.head_dim + d));
      for (std::int64_t c = 0; c < p.value_dim; ++c)
        part.v.set((bg * keys + j) * p.value_dim + c, in.v.get((bg * p.kv_len + j) * p.value_dim + c));
    }
  return testing::run_method("performer", one, part, params);
}

}  // namespace

TEST_CASE("performer error against exact softmax falls as features grow", "[performer][methods]") {
  const Problem p = testing::make_problem({1, 2, 2, 64, 64, 16, 16}, "full");
  std::vector<double> mean_error;
  for (const std::int64_t features : {16, 64, 256, 1024}) {
    double sum = 0;
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
      const Inputs in = moderate_inputs(p, 500 + seed);
      const Tensor exact = testing::run_method("reference", p, in);
      const Tensor approx = testing::run_method("performer", p, in, {{"features", features}, {"seed", seed}});
      sum += testing::relative_l2(approx, exact);
    }
    mean_error.push_back(sum / 5);
  }
  INFO("mean relative L2 error for 16, 64, 256, 1024 features: " << mean_error[0] << ", " << mean_error[1] << ", "
                                                                 << mean_error[2] << ", " << mean_error[3]);
  for (std::size_t i = 1; i < mean_error.size(); ++i) CHECK(mean_error[i] < mean_error[i - 1]);
  CHECK(mean_error[3] * 4 < mean_error[0]);  // ~1/√m: 8x in theory
  CHECK(mean_error[3] < 0.1);
}

TEST_CASE("performer causal prefix sums equal the masked form of the same features", "[performer][methods]") {
  const testing::Shape shape =
      GENERATE(testing::Shape{1, 4, 2, 40, 40, 32, 24}, testing::Shape{2, 2, 1, 17, 30, 16, 16});
  const Problem p = testing::make_problem(shape, "causal");
  INFO(p.describe());
  const json params = {{"features", 64}, {"seed", 3}};
  const Inputs in = moderate_inputs(p, 21);
  const Tensor causal = testing::run_method("performer", p, in, params);
  for (std::int64_t i = 0; i < p.q_len; ++i) {
    const Tensor row = visible_prefix_output(p, in, i, params);
    double num = 0, den = 0;
    for (std::int64_t bh = 0; bh < p.batch * p.heads; ++bh)
      for (std::int64_t c = 0; c < p.value_dim; ++c) {
        const double d = causal.get((bh * p.q_len + i) * p.value_dim + c) - row.get(bh * p.value_dim + c);
        num += d * d;
        den += row.get(bh * p.value_dim + c) * row.get(bh * p.value_dim + c);
      }
    INFO("query " << i);
    CHECK(std::sqrt(num / den) <= 1e-5);
  }
}

TEST_CASE("performer is deterministic in its seed and runs bf16", "[performer][methods]") {
  const Problem p = testing::make_problem({1, 2, 2, 50, 50, 32, 32}, "causal");
  const Inputs in = moderate_inputs(p, 8);
  const Tensor a = testing::run_method("performer", p, in, {{"seed", 1}});
  const Tensor b = testing::run_method("performer", p, in, {{"seed", 1}});
  const Tensor c = testing::run_method("performer", p, in, {{"seed", 2}});
  CHECK(testing::relative_l2(a, b) == 0.0);
  CHECK(testing::relative_l2(a, c) > 1e-4);

  // bf16 inputs give the fp32 result on the same (rounded) values, within bf16 output rounding.
  const Problem pb = testing::make_problem({1, 2, 2, 50, 50, 32, 32}, "causal", Dtype::bf16);
  const Inputs in_b = datasets::gaussian_inputs(pb, 9);
  const Inputs in_f{testing::to_f32(in_b.q), testing::to_f32(in_b.k), testing::to_f32(in_b.v)};
  const Tensor out_b = testing::run_method("performer", pb, in_b);
  const Tensor out_f = testing::run_method("performer", p, in_f);
  REQUIRE(out_b.dtype() == Dtype::bf16);
  CHECK(testing::relative_l2(out_b, out_f) <= 1e-2);
}

TEST_CASE("performer declares itself, counts its FLOPs and refuses what it cannot compute", "[performer][methods]") {
  const Method& m = testing::method_named("performer");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::linear);
  REQUIRE(info.params.size() == 2);
  CHECK(info.params[0].name == "features");
  CHECK(info.params[0].default_value == 256);
  CHECK(info.params[1].name == "seed");
  CHECK(info.params[0].check(0).has_value());
  CHECK(info.params[0].check(100000).has_value());
  CHECK_FALSE(info.params[0].check(16).has_value());
  CHECK(info.params[1].check(-1).has_value());

  const Params params = complete_params(info.params, json{{"features", 128}});
  const Problem p = testing::make_problem({1, 4, 4, 256, 256, 64, 64}, "full");
  // per row: projection 2·m·D + m exp; keys also |k|² (2·D); state and read-out 2·m·(Dv+1) each.
  const double row = 2.0 * 128 * 64 + 128;
  const double expect = 1024.0 * (2 * 128 * 65 + row + 128) + 1024.0 * (2 * 128 * 65 + 64 + row);
  CHECK(m.flops(p, params) == Approx(expect));
  CHECK(m.supports(p, params, Device{}));
  CHECK(m.supports(testing::make_problem({1, 2, 1, 37, 100, 64, 64}, "full"), params, Device{}));
  Problem band = testing::make_problem({1, 2, 2, 16, 16, 64, 64}, "full");
  band.mask = std::make_shared<const testing::BandMask>(band.mask_shape());
  const Support banded = m.supports(band, params, Device{});
  CHECK_FALSE(banded);
  CHECK_THAT(banded.reason, Catch::Contains("'band'"));
  CHECK_FALSE(m.supports(testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64), params, Device{}));
  CHECK_FALSE(m.supports(p, params, Device{Device::Kind::cuda, 0}));
}
