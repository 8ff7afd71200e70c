// sliding_window and sink_window on CUDA are the flash kernels over the mask their plan composes
// (kernels/cuda/sparse.cu: kernels::compose_pattern, the pattern causal for sink_window and for
// sliding_window's causal mode). Here that composition and the kernels run on the CPU under the warp
// emulator, against the float64 oracle under pattern ∩ problem mask and against the CPU method.
#include <catch2/catch.hpp>
#include <string>

#include "datasets/generators.hpp"
#include "kernels/cpu/sparse_static.hpp"
#include "kernels/cuda_emulated/emulated_kernels.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

using namespace attnbench;

namespace {

void check_static_sparse(const std::string& method, const Problem& p, const json& given, std::uint64_t seed) {
  INFO(method << " " << given.dump() << " on " << p.describe() << " mask " << p.mask->name());
  const Params params = complete_params(testing::method_named(method).info().params, given);
  // The plan's composition (StaticSparseCuda::plan).
  const bool pattern_causal = method == "sink_window" || params.string("mode") == "causal";
  const auto composed = kernels::compose_pattern(p, method, params, pattern_causal);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor out = testing::emulated::run_flash(p, *composed, in, {}).out;
  Problem oracle = p;
  oracle.mask = intersect_masks(p.mask, make_mask(method, given, p.mask_shape()));
  {
    INFO("against the float64 oracle");
    testing::check_matches_reference(out, testing::run_method("reference", oracle, in), p.dtype);
  }
  if (p.dtype != Dtype::f16) {
    INFO("against the CPU method");
    testing::check_matches_reference(out, testing::run_method(method, p, in, given), p.dtype);
  }
}

}  // namespace

TEST_CASE("emulated CUDA sliding_window and sink_window compute the composed mask exactly",
          "[cuda_emulated][sliding_window][sink_window]") {
  const Dtype dtype = GENERATE(Dtype::bf16, Dtype::f32);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  std::uint64_t seed = 1201;
  for (const std::string mode : {"causal", "centred"}) {
    check_static_sparse("sliding_window", testing::make_problem({1, 2, 1, 150, 150, 64, 64}, mask, dtype),
                        {{"window", 33}, {"mode", mode}}, seed++);
    Problem shorter = testing::make_problem({1, 2, 2, 40, 130, 64, 64}, mask, dtype);  // Lq < Lk, one sequence
    shorter.cross = false;
    check_static_sparse("sliding_window", shorter, {{"window", 70}, {"mode", mode}}, seed++);
  }
  check_static_sparse("sink_window", testing::make_problem({1, 2, 1, 140, 140, 64, 64}, mask, dtype),
                      {{"sinks", 4}, {"window", 50}}, seed++);
}
