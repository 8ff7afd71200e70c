// Tests of flash's CUDA implementation (and of flash_sync, its unpipelined tensor-core kernel) against
// the float64 oracle: fp16 and bf16 on tensor cores (at 16 and 32 query rows per warp) for
// head dims 64/128/256, fp32 on CUDA cores, full and causal, GQA and MQA, cross attention with
// Lq != Lk, ragged tiles, packed documents and a per-head mask through the lowered block maps.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "cuda_support.hpp"
#include "datasets/generators.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

void check_flash(const Problem& p, std::uint64_t seed) {
  INFO(p.describe() << " Dv" << p.value_dim << " mask " << p.mask->name() << " seed " << seed);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor ref = testing::run_method("reference", p, in);
  // fp16/bf16: the pipelined kernel (flash) at its default and at 16 rows per warp, and the plain one
  // (flash_sync), alike.
  struct Run {
    std::string method;
    json params;
  };
  std::vector<Run> runs{{"flash", json::object()}};
  if (p.dtype != Dtype::f32) {
    runs.push_back({"flash_sync", json::object()});
    if (p.head_dim <= 128) runs.push_back({"flash", {{"warp_rows", 16}}});
  }
  for (const Run& r : runs) {
    INFO(r.method << " " << r.params.dump());
    const Tensor out = testing::run_on_cuda(r.method, p, in, r.params);
    REQUIRE(out.dtype() == p.dtype);
    testing::check_matches_reference(out, ref, p.dtype);
  }
}

}  // namespace

TEST_CASE("flash CUDA fp16 and bf16 on tensor cores match the float64 reference", "[cuda][flash]") {
  const Dtype dtype = GENERATE(Dtype::f16, Dtype::bf16);
  const std::int64_t d = GENERATE(64, 128, 256);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1, 1, d, d},      // a single query and key
      {2, 2, 2, 100, 100, d, d},  // batch 2, ragged last tile
      {1, 8, 2, 130, 130, d, d},  // GQA
      {1, 4, 1, 65, 200, d, d},   // MQA, cross attention Lq < Lk
      {1, 2, 1, 100, 37, d, d},   // Lq > Lk: under causal the first 63 rows see nothing
      {1, 2, 2, 300, 300, d, d},  // several full and partial tiles
  };
  std::uint64_t seed = 101;
  for (const Shape& s : shapes) check_flash(testing::make_problem(s, mask, dtype), seed++);
}

TEST_CASE("flash CUDA fp32 matches the float64 reference", "[cuda][flash]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1, 1, 64, 64},       {2, 2, 2, 7, 7, 40, 40},     {1, 8, 2, 100, 100, 64, 64},
      {1, 4, 1, 257, 257, 128, 128}, {1, 2, 2, 37, 100, 72, 72},  {1, 2, 1, 100, 37, 64, 40},
      {2, 3, 3, 65, 129, 256, 256},  {1, 2, 2, 130, 130, 96, 48},
  };
  std::uint64_t seed = 201;
  for (const Shape& s : shapes) check_flash(testing::make_problem(s, mask, Dtype::f32), seed++);
}

TEST_CASE("flash CUDA computes packed documents through block maps and bitmasks", "[cuda][flash]") {
  const Dtype dtype = GENERATE(Dtype::f16, Dtype::bf16, Dtype::f32);
  const bool causal = GENERATE(true, false);
  const std::int64_t d = GENERATE(64, 128, 256);
  Problem p = testing::make_problem({2, 4, 2, 333, 333, d, d}, "full", dtype);
  p.mask = make_mask("document", {{"doc_lens", "50,120,7,90"}, {"causal", causal}}, p.mask_shape());
  check_flash(p, 301);
  p.mask = make_mask("document", {{"documents", 5}, {"seed", 3}, {"causal", causal}}, p.mask_shape());
  check_flash(p, 302);
}

TEST_CASE("flash CUDA follows a mask that differs per head", "[cuda][flash]") {
  const Dtype dtype = GENERATE(Dtype::f16, Dtype::bf16, Dtype::f32);
  Problem p = testing::make_problem({2, 4, 1, 200, 260, 64, 64}, "full", dtype);
  p.mask = std::make_shared<const testing::ShiftedWindow>(p.mask_shape(), 7, 3, 45);
  check_flash(p, 401);
}

TEST_CASE("flash CUDA refuses what its kernels do not handle, saying why", "[cuda][flash]") {
  const DeviceImpl* impl = MethodRegistry::instance().impl("flash", Device::Kind::cuda);
  REQUIRE(impl != nullptr);
  const Device gpu{Device::Kind::cuda, 0};
  const Params params = complete_params(testing::method_named("flash").info().params, json::object());
  const Support d96 =
      impl->supports(testing::make_problem({1, 1, 1, 64, 64, 96, 96}, "causal", Dtype::f16), params, gpu);
  CHECK_FALSE(d96.ok);
  CHECK(d96.reason.find("head_dim 64, 128 or 256") != std::string::npos);
  const Support dv =
      impl->supports(testing::make_problem({1, 1, 1, 64, 64, 64, 32}, "causal", Dtype::bf16), params, gpu);
  CHECK_FALSE(dv.ok);
  CHECK(dv.reason.find("value_dim") != std::string::npos);
  CHECK_FALSE(impl->supports(testing::make_problem({1, 1, 1, 64, 64, 64, 64}, "causal", Dtype::f64), params, gpu).ok);
  CHECK(impl->supports(testing::make_problem({1, 1, 1, 64, 64, 96, 48}, "causal", Dtype::f32), params, gpu).ok);
}
