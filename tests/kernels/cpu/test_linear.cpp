// Tests of the linear method (elu+1 linear attention): equal to its own quadratic form in float64, causal
// and not, over shapes, head layouts and cross attention; its refusals; memory flat in the length.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "attnbench/memory.hpp"
#include "datasets/generators.hpp"
#include "kernels/cpu/linear_forms.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

double elu1(double x) { return x > 0 ? x + 1.0 : std::exp(x); }

// φ(q)·φ(k) with φ = elu + 1, applied to q and k as they are (no softmax scale).
double elu_similarity(const std::vector<double>& q, const std::vector<double>& k, std::int64_t, std::int64_t) {
  double s = 0;
  for (std::size_t d = 0; d < q.size(); ++d) s += elu1(q[d]) * elu1(k[d]);
  return s;
}

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> all = {
      {1, 1, 1, 1, 1, 64, 64},      // a single query and key
      {2, 2, 2, 7, 7, 40, 40},      // odd length, batch 2
      {1, 8, 2, 100, 100, 64, 64},  // GQA
      {1, 4, 1, 257, 257, 32, 48},  // MQA, value dim differs from head dim
      {1, 2, 2, 37, 100, 72, 72},   // cross attention, Lq < Lk
      {1, 2, 1, 100, 37, 64, 40},   // Lq > Lk: under causal the first 63 rows see nothing
      {2, 3, 3, 65, 129, 16, 24},
  };
  return all;
}

}  // namespace

TEST_CASE("linear equals its quadratic form", "[linear][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  std::uint64_t seed = 31;
  for (const Shape& s : shapes()) {
    const Problem p = testing::make_problem(s, mask, dtype);
    INFO(p.describe() << " Dv" << p.value_dim);
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const Tensor ref = testing::quadratic_form(p, in, elu_similarity, true);
    const Tensor out = testing::run_method("linear", p, in);
    REQUIRE(out.dtype() == p.dtype);
    const double err = testing::relative_l2(out, ref);
    INFO("relative L2 error " << err);
    CHECK(err <= (dtype == Dtype::f32 ? 1e-5 : 1e-2));
    for (std::int64_t i = 0; i < out.numel(); ++i)
      if (ref.get(i) == 0.0) REQUIRE(out.get(i) == 0.0);
  }
}

TEST_CASE("linear causal rows before the first key are zero", "[linear][methods]") {
  const Problem p = testing::make_problem({1, 2, 1, 100, 37, 64, 40}, "causal");
  const Tensor out = testing::run_method("linear", p, datasets::gaussian_inputs(p, 7));
  for (std::int64_t h = 0; h < 2; ++h)
    for (std::int64_t q = 0; q < 100; ++q)
      for (std::int64_t c = 0; c < 40; ++c) {
        const double x = out.get((h * 100 + q) * 40 + c);
        if (q < 63)
          REQUIRE(x == 0.0);
        else
          REQUIRE(std::isfinite(x));
      }
}

TEST_CASE("linear declares itself, counts its FLOPs and refuses what it cannot compute", "[linear][methods]") {
  const Method& m = testing::method_named("linear");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::linear);
  CHECK(info.params.empty());
  CHECK_FALSE(info.reference.empty());
  const Params params = complete_params(info.params, json::object());

  const Problem p = testing::make_problem({2, 8, 2, 512, 512, 64, 32}, "causal");
  // keys: B·Hkv·Lk·(2·F·(Dv+1) + D); queries: B·H·Lq·(2·F·(Dv+1) + Dv + D), F = D.
  const double expect = 2.0 * 2 * 512 * (2.0 * 64 * 33 + 64) + 2.0 * 8 * 512 * (2.0 * 64 * 33 + 32 + 64);
  CHECK(m.flops(p, params) == Approx(expect));
  CHECK(m.supports(p, params, Device{}));
  CHECK(m.supports(testing::make_problem({1, 2, 2, 37, 100, 64, 64}, "full"), params, Device{}));

  const Support cuda = m.supports(p, params, Device{Device::Kind::cuda, 0});
  CHECK_FALSE(cuda);
  CHECK_THAT(cuda.reason, Catch::Contains("cuda"));
  const Support f64 = m.supports(testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64), params, Device{});
  CHECK_FALSE(f64);
  CHECK_THAT(f64.reason, Catch::Contains("fp64"));
  Problem gqa = testing::make_problem({1, 3, 2, 8, 8, 64, 64}, "full");
  CHECK_FALSE(m.supports(gqa, params, Device{}));
  Problem band = testing::make_problem({1, 2, 2, 16, 16, 64, 64}, "full");
  band.mask = std::make_shared<const testing::BandMask>(band.mask_shape());
  const Support banded = m.supports(band, params, Device{});
  CHECK_FALSE(banded);
  CHECK_THAT(banded.reason, Catch::Contains("no notion of a 'band' mask"));
}

TEST_CASE("linear memory does not grow with sequence length", "[linear][methods]") {
  auto peak = [](std::int64_t len) {
    const Problem p = testing::make_problem({1, 2, 2, len, len, 64, 64}, "causal");
    const Inputs in = datasets::gaussian_inputs(p, 3);
    Tensor out = make_output(p, p.dtype);
    const Method& m = testing::method_named("linear");
    const Params params = complete_params(m.info().params, json::object());
    memory::reset_peak();
    {
      auto plan = m.plan(p, params, Device{});
      plan->run(in, out);
    }
    return memory::peak_bytes();
  };
  const std::int64_t at_1k = peak(1024), at_4k = peak(4096);
  INFO(at_1k << " -> " << at_4k << " bytes");
  CHECK(at_4k <= at_1k + 4096);
}
