// Tests of the GPU `dense` and `cublas` baselines against the float64 oracle: fp32/bf16/fp16, full, causal,
// a sliding window and a per-head window (the byte-map path), MHA/GQA/MQA, odd and cross lengths; their
// memory refusals with the byte count; the score matrix counted in the device peak.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "cuda/cuda_support.hpp"
#include "datasets/generators.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> all = {
      {1, 1, 1, 1, 1, 64, 64},        // a single query and key
      {2, 2, 2, 7, 7, 40, 40},        // odd length, head dim 40, batch 2
      {1, 8, 2, 100, 100, 64, 64},    // GQA, lengths no tile divides
      {1, 4, 1, 257, 257, 128, 128},  // MQA, head dim 128, one past a power of two
      {1, 2, 2, 37, 100, 72, 72},     // cross attention, Lq < Lk
      {1, 2, 1, 100, 37, 64, 40},     // Lq > Lk: under causal the first 63 rows see nothing
      {2, 3, 3, 65, 129, 96, 48},     // head dim 96, value dim 48
  };
  return all;
}

Problem with_mask(const Shape& s, const std::string& mask, Dtype dtype) {
  Problem p = testing::make_problem(s, "full", dtype);
  if (mask == "sliding_window")
    p.mask = make_mask("sliding_window", {{"window", 13}}, p.mask_shape());
  else if (mask == "head_window")
    p.mask = std::make_shared<const testing::ShiftedWindow>(p.mask_shape(), 3, 0, 9);
  else
    p.mask = make_mask(mask, json::object(), p.mask_shape());
  return p;
}

double tolerance(Dtype d) { return d == Dtype::f32 ? 1e-5 : 1e-2; }

void check_against_reference(const std::string& method, const Problem& p, std::uint64_t seed) {
  INFO(method << " on " << p.describe() << " Dv" << p.value_dim << " mask " << p.mask->name() << " seed " << seed);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor ref = testing::run_method("reference", p, in);
  const Tensor out = testing::run_on_cuda(method, p, in);
  REQUIRE(out.dtype() == p.dtype);
  const double err = testing::relative_l2(out, ref);
  INFO("relative L2 error " << err << " (at most " << tolerance(p.dtype) << " expected)");
  CHECK(err <= tolerance(p.dtype));
  // Rows whose mask allows no key are zeros, as in the reference.
  for (std::int64_t i = 0; i < out.numel(); ++i)
    if (ref.get(i) == 0.0) {
      INFO("element " << i << " is " << out.get(i) << ", the reference's is 0");
      REQUIRE(out.get(i) == 0.0);
    }
}

}  // namespace

TEST_CASE("dense and cublas on CUDA match the float64 reference", "[cuda][dense][cublas]") {
  const std::string method = GENERATE(std::string("dense"), std::string("cublas"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16, Dtype::f16);
  const std::string mask =
      GENERATE(std::string("full"), std::string("causal"), std::string("sliding_window"), std::string("head_window"));
  std::uint64_t seed = 500;
  for (const Shape& s : shapes()) check_against_reference(method, with_mask(s, mask, dtype), seed++);
}

TEST_CASE("dense and cublas on CUDA at 1000 tokens with GQA and a causal mask", "[cuda][dense][cublas]") {
  const std::string method = GENERATE(std::string("dense"), std::string("cublas"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16, Dtype::f16);
  check_against_reference(method, with_mask({1, 8, 2, 1000, 1000, 128, 128}, "causal", dtype), 77);
}

TEST_CASE("dense and cublas on CUDA refuse a score matrix the device cannot hold and give its bytes",
          "[cuda][dense][cublas]") {
  const Device gpu{Device::Kind::cuda, 0};
  // 32 heads of 64K × 64K fp32 scores: 512 GiB, more than any device here has.
  const Problem p = testing::make_problem({1, 32, 32, 65536, 65536, 64, 64}, "causal", Dtype::bf16);
  const Method& dense = testing::method_named("dense");
  const DeviceImpl& dense_cuda = *MethodRegistry::instance().impl("dense", Device::Kind::cuda);
  Support s = dense_cuda.supports(p, complete_params(dense.info().params, json::object()), gpu);
  CHECK_FALSE(s);
  CHECK_THAT(s.reason, Catch::Contains("549755813888 bytes") && Catch::Contains("max_score_gib"));
  s = dense_cuda.supports(p, complete_params(dense.info().params, {{"max_score_gib", 1024.0}}), gpu);
  CHECK_FALSE(s);
  CHECK_THAT(s.reason, Catch::Contains("549755813888 bytes") && Catch::Contains("cudaMemGetInfo"));

  const DeviceImpl& cublas_cuda = *MethodRegistry::instance().impl("cublas", Device::Kind::cuda);
  s = cublas_cuda.supports(p, Params{}, gpu);
  CHECK_FALSE(s);
  CHECK_THAT(s.reason, Catch::Contains("cudaMemGetInfo") && Catch::Contains("bytes"));
}

TEST_CASE("the score matrix of dense and cublas counts in the device peak", "[cuda][dense][cublas]") {
  const std::string method = GENERATE(std::string("dense"), std::string("cublas"));
  const Device gpu{Device::Kind::cuda, 0};
  DeviceBackend& backend = *device_backend(Device::Kind::cuda);
  backend.select(gpu);
  const Problem p = with_mask({1, 4, 4, 512, 512, 64, 64}, "causal", Dtype::f16);
  const Inputs in = datasets::gaussian_inputs(p, 3);
  const DeviceImpl& impl = *MethodRegistry::instance().impl(method, Device::Kind::cuda);
  const Params params = complete_params(testing::method_named(method).info().params, json::object());
  backend.reset_peak(gpu);
  auto plan = impl.plan(p, params, gpu);
  plan->prepare(in);
  const double scores = 4.0 * 4 * 512 * 512;
  INFO(method << ": peak " << backend.peak_bytes(gpu) << " bytes, scores alone " << scores);
  CHECK(static_cast<double>(backend.peak_bytes(gpu)) >= scores);
}
