// Tests of the cosformer method: equal in float64 to its quadratic form
// out_i = Σ_j relu(q_i)·relu(k_j) cos(π/2·(t_i − j)/M) v_j / Σ_j (same), M = max(q_len, kv_len), causal
// and not, over shapes, head layouts and cross attention; and its refusals.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cpu/linear_forms.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

testing::Similarity cos_reweighted_relu(const Problem& p) {
  const double M = static_cast<double>(std::max(p.q_len, p.kv_len));
  return [M](const std::vector<double>& q, const std::vector<double>& k, std::int64_t tq, std::int64_t tk) {
    double s = 0;
    for (std::size_t d = 0; d < q.size(); ++d) s += std::max(q[d], 0.0) * std::max(k[d], 0.0);
    return s * std::cos(std::numbers::pi / 2 * static_cast<double>(tq - tk) / M);
  };
}

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> all = {
      {1, 1, 1, 1, 1, 64, 64},      // a single query and key
      {2, 2, 2, 7, 7, 40, 40},      // odd length, batch 2
      {1, 8, 2, 100, 100, 64, 64},  // GQA
      {1, 4, 1, 257, 257, 32, 48},  // MQA, value dim differs from head dim
      {1, 2, 2, 37, 100, 72, 72},   // cross attention, Lq < Lk
      {1, 2, 1, 100, 37, 64, 40},   // Lq > Lk: negative query positions; causal: 63 empty rows
  };
  return all;
}

}  // namespace

TEST_CASE("cosformer equals its quadratic form", "[cosformer][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  std::uint64_t seed = 91;
  for (const Shape& s : shapes()) {
    const Problem p = testing::make_problem(s, mask, dtype);
    INFO(p.describe() << " Dv" << p.value_dim);
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const Tensor ref = testing::quadratic_form(p, in, cos_reweighted_relu(p), true);
    const Tensor out = testing::run_method("cosformer", p, in);
    REQUIRE(out.dtype() == p.dtype);
    const double err = testing::relative_l2(out, ref);
    INFO("relative L2 error " << err);
    CHECK(err <= (dtype == Dtype::f32 ? 1e-5 : 1e-2));
    for (std::int64_t i = 0; i < out.numel(); ++i)
      if (ref.get(i) == 0.0) REQUIRE(out.get(i) == 0.0);
  }
}

TEST_CASE("cosformer writes a zero row when no key has a positive similarity", "[cosformer][methods]") {
  // One head dim: a query with a negative entry has relu(q) = 0 and sees nothing.
  const Problem p = testing::make_problem({1, 1, 1, 50, 50, 1, 8}, "causal");
  const Inputs in = datasets::gaussian_inputs(p, 4);
  const Tensor out = testing::run_method("cosformer", p, in);
  const Tensor ref = testing::quadratic_form(p, in, cos_reweighted_relu(p), true);
  CHECK(testing::relative_l2(out, ref) <= 1e-5);
  std::int64_t zero_rows = 0;
  for (std::int64_t i = 0; i < 50; ++i)
    if (in.q.get(i) <= 0.0) {
      ++zero_rows;
      for (std::int64_t c = 0; c < 8; ++c) REQUIRE(out.get(i * 8 + c) == 0.0);
    }
  CHECK(zero_rows > 0);
}

TEST_CASE("cosformer declares itself, counts its FLOPs and refuses what it cannot compute", "[cosformer][methods]") {
  const Method& m = testing::method_named("cosformer");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::linear);
  CHECK(info.params.empty());
  const Params params = complete_params(info.params, json::object());
  const Problem p = testing::make_problem({1, 4, 4, 128, 128, 32, 32}, "full");
  // F = 2D = 64; keys 4·128·(2·64·33 + 96), queries 4·128·(2·64·33 + 32 + 96).
  CHECK(m.flops(p, params) == Approx(512.0 * (2 * 64 * 33 + 96) + 512.0 * (2 * 64 * 33 + 32 + 96)));
  CHECK(m.supports(p, params, Device{}));
  Problem band = testing::make_problem({1, 2, 2, 16, 16, 64, 64}, "full");
  band.mask = std::make_shared<const testing::BandMask>(band.mask_shape());
  const Support banded = m.supports(band, params, Device{});
  CHECK_FALSE(banded);
  CHECK_THAT(banded.reason, Catch::Contains("'band'"));
  CHECK_FALSE(m.supports(testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64), params, Device{}));
  CHECK_FALSE(m.supports(p, params, Device{Device::Kind::cuda, 0}));
}
