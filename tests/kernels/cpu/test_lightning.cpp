// Tests of the lightning method (Lightning Attention-2): for every block size its blockwise result equals
// the causal quadratic form out_t = scale·Σ_{s≤t} λ^(t−s)(q_t·k_s) v_s in float64 (identity feature map,
// no normalisation, as the paper), with and without decay; and its refusals.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cpu/linear_forms.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

testing::Similarity decayed_dot(double scale, double decay) {
  const double lambda = decay == 0.0 ? 1.0 : decay;
  return [scale, lambda](const std::vector<double>& q, const std::vector<double>& k, std::int64_t tq, std::int64_t tk) {
    double s = 0;
    for (std::size_t d = 0; d < q.size(); ++d) s += q[d] * k[d];
    return scale * std::pow(lambda, static_cast<double>(tq - tk)) * s;
  };
}

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> all = {
      {1, 1, 1, 1, 1, 32, 32},      // a single token
      {2, 2, 2, 7, 7, 40, 40},      // odd length, batch 2
      {1, 4, 2, 100, 100, 64, 48},  // GQA, value dim differs
      {1, 2, 1, 37, 100, 32, 32},   // Lq < Lk: 63 keys precede the first query
      {1, 2, 2, 100, 37, 32, 24},   // Lq > Lk: the first 63 rows see nothing
  };
  return all;
}

}  // namespace

TEST_CASE("lightning equals the causal quadratic form for every block size", "[lightning][methods]") {
  const double decay = GENERATE(0.0, 0.9);
  std::uint64_t seed = 71;
  for (const Shape& s : shapes()) {
    for (const std::int64_t block : {std::int64_t{1}, std::int64_t{7}, std::int64_t{64}, s.q_len}) {
      const Problem p = testing::make_problem(s, "causal");
      INFO(p.describe() << " Dv" << p.value_dim << " block " << block << " decay " << decay);
      const Inputs in = datasets::gaussian_inputs(p, seed++);
      const Tensor ref = testing::quadratic_form(p, in, decayed_dot(p.scale, decay), false);
      const Tensor out = testing::run_method("lightning", p, in, {{"block", block}, {"decay", decay}});
      const double err = testing::relative_l2(out, ref);
      INFO("relative L2 error " << err);
      CHECK(err <= 1e-5);
      for (std::int64_t i = 0; i < out.numel(); ++i)
        if (ref.get(i) == 0.0) REQUIRE(out.get(i) == 0.0);
    }
  }
}

TEST_CASE("lightning bf16 equals the quadratic form within bf16 rounding", "[lightning][methods]") {
  const Problem p = testing::make_problem({1, 4, 2, 100, 100, 64, 64}, "causal", Dtype::bf16);
  const Inputs in = datasets::gaussian_inputs(p, 5);
  const Tensor ref = testing::quadratic_form(p, in, decayed_dot(p.scale, 0.95), false);
  const Tensor out = testing::run_method("lightning", p, in, {{"block", 16}, {"decay", 0.95}});
  REQUIRE(out.dtype() == Dtype::bf16);
  CHECK(testing::relative_l2(out, ref) <= 1e-2);
}

TEST_CASE("lightning declares itself, counts its FLOPs and refuses what it cannot compute", "[lightning][methods]") {
  const Method& m = testing::method_named("lightning");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::linear);
  REQUIRE(info.params.size() == 2);
  CHECK(info.params[0].name == "block");
  CHECK(info.params[0].default_value == 64);
  CHECK(info.params[1].name == "decay");
  CHECK(info.params[1].default_value == 0.0);
  CHECK(info.params[0].check(0).has_value());  // an error message: below the range
  CHECK_FALSE(info.params[0].check(7).has_value());
  CHECK(info.params[1].check(1.5).has_value());
  CHECK(info.params[1].check(-0.1).has_value());
  CHECK_FALSE(info.params[1].check(0.5).has_value());

  const Params params = complete_params(info.params, json::object());
  const Problem p = testing::make_problem({1, 8, 2, 256, 256, 64, 32}, "causal");
  // state: B·Hkv·Lk·2·D·Dv; per head: Lq·2·D·Dv + (4 blocks of 64: 4·64·65/2 pairs)·2·(D+Dv).
  const double expect = 2.0 * 256 * 2 * 64 * 32 + 8.0 * (256.0 * 2 * 64 * 32 + 4.0 * 64 * 65 / 2 * 2 * 96);
  CHECK(m.flops(p, params) == Approx(expect));
  CHECK(m.supports(p, params, Device{}));

  const Support full = m.supports(testing::make_problem({1, 2, 2, 16, 16, 64, 64}, "full"), params, Device{});
  CHECK_FALSE(full);
  CHECK_THAT(full.reason, Catch::Contains("causal"));
  Problem band = testing::make_problem({1, 2, 2, 16, 16, 64, 64}, "causal");
  band.mask = std::make_shared<const testing::BandMask>(band.mask_shape());
  const Support banded = m.supports(band, params, Device{});
  CHECK_FALSE(banded);
  CHECK_THAT(banded.reason, Catch::Contains("'band'"));
  CHECK_FALSE(m.supports(testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "causal", Dtype::f64), params, Device{}));
  CHECK_FALSE(m.supports(p, params, Device{Device::Kind::cuda, 0}));
}
