// The fp32 CUDA-core flash kernel (kernels/cuda/flash_fp32_kernel.cuh) and MoBA's gate on the GPU
// (kernels/cuda/moba_select_kernel.cuh: block mean keys, then each query's selection) run on the CPU under
// the warp emulator: fp32 flash against the float64 oracle under its three mask modes, and the whole CUDA
// moba path (gate, then the flash kernel of the dtype) against the float64 MoBA definition on every row
// whose selection is not a near-tie (as tests/cuda/test_sparse_cuda.cpp checks it on a device).
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cpu/dynamic_sparse_oracle.hpp"
#include "kernels/cuda_emulated/emulated_kernels.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;
using attnbench::testing::emulated::run_flash;
using attnbench::testing::emulated::Way;

namespace {

void check_fp32(const Problem& p, std::uint64_t seed) {
  INFO(p.describe() << " Dv" << p.value_dim << " mask " << p.mask->name() << " seed " << seed);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor ref = testing::run_method("reference", p, in);
  testing::check_matches_reference(run_flash(p, *p.mask, in, Way{}).out, ref, Dtype::f32);
}

}  // namespace

TEST_CASE("emulated fp32 CUDA flash kernel matches the float64 reference", "[cuda_emulated][flash]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1, 1, 64, 64},   {2, 2, 2, 7, 7, 40, 40},    {1, 4, 2, 37, 100, 72, 72},
      {1, 2, 1, 30, 11, 64, 40}, {1, 2, 2, 9, 70, 256, 256}, {1, 2, 1, 33, 33, 96, 200},
  };
  std::uint64_t seed = 901;
  for (const Shape& s : shapes) check_fp32(testing::make_problem(s, mask, Dtype::f32), seed++);
}

TEST_CASE("emulated fp32 CUDA flash kernel follows lowered masks", "[cuda_emulated][flash]") {
  Problem p = testing::make_problem({2, 2, 1, 90, 90, 48, 48}, "full", Dtype::f32);
  p.mask = make_mask("document", {{"doc_lens", "30,7,40,13"}, {"causal", true}}, p.mask_shape());
  check_fp32(p, 911);
  p.mask = make_mask("document", {{"documents", 3}, {"seed", 5}, {"causal", false}}, p.mask_shape());
  check_fp32(p, 912);
}

TEST_CASE("emulated CUDA moba (gate, then flash) equals the float64 MoBA definition", "[cuda_emulated][moba]") {
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::f16, Dtype::bf16);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  struct Case {
    Shape shape;
    std::int64_t block, topk;
  };
  const std::vector<Case> cases = {
      {{1, 2, 2, 130, 130, 64, 64}, 32, 3},   // ragged last block
      {{1, 4, 2, 70, 200, 128, 128}, 48, 2},  // GQA, Lq < Lk
      {{1, 2, 1, 100, 40, 64, 64}, 16, 2},    // Lq > Lk: under causal the first 60 rows see nothing
  };
  std::uint64_t seed = 921;
  std::int64_t compared = 0;
  for (const Case& c : cases) {
    const Problem p = testing::make_problem(c.shape, mask, dtype);
    INFO("moba block " << c.block << " topk " << c.topk << " on " << p.describe());
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const cuda::MobaSetup setup{c.block, c.topk};
    const testing::emulated::FlashRun run = run_flash(p, *p.mask, in, Way{}, &setup);
    const testing::OracleResult oracle = testing::block_oracle(p, in, testing::moba_under_test().rule(c.block, c.topk));
    std::int64_t rows = 0;
    const double err = testing::relative_l2_unambiguous(p, run.out, oracle, &rows);
    INFO("relative L2 error against the float64 definition over " << rows << " rows: " << err);
    CHECK(err <= testing::oracle_tolerance(dtype));
    CHECK(rows > 0);
    compared += rows;
    // Every selection word was written (the gate's output buffer starts as 0xdeadbeef).
    for (const std::uint32_t w : run.sel) REQUIRE(w != 0xdeadbeefu);
  }
  CHECK(compared > 0);
}
