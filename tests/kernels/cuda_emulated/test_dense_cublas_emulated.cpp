// The GPU baselines' device code on the CPU under the warp emulator, against the float64 oracle: `dense`
// (its tiled GEMM kernel, the masked softmax kernel in place, the GEMM again) and `cublas` (the masked
// softmax kernel between two strided batched GEMMs whose parameters, from baselines/cuda/cublas_calls.hpp,
// are applied with cuBLAS's documented column-major semantics). fp32, fp16 and bf16; full, causal,
// document and per-head masks (the byte map); GQA, MQA, cross attention, rows that see no key.
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cuda_emulated/emulated_kernels.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

void check_baselines(const Problem& p, std::uint64_t seed) {
  INFO(p.describe() << " Dv" << p.value_dim << " mask " << p.mask->name() << " seed " << seed);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor ref = testing::run_method("reference", p, in);
  const Tensor dense = testing::emulated::run_dense(p, in, emu::Schedule::round_robin);
  const Tensor cublas = testing::emulated::run_cublas(p, in, emu::Schedule::round_robin);
  for (const auto& [name, out] : {std::pair<const char*, const Tensor*>{"dense", &dense}, {"cublas", &cublas}}) {
    INFO(name);
    testing::check_matches_reference(*out, ref, p.dtype);
  }
  const Tensor skewed = testing::emulated::run_dense(p, in, emu::Schedule::reversed_warps);
  CHECK(std::memcmp(dense.data(), skewed.data(), dense.nbytes()) == 0);
}

}  // namespace

TEST_CASE("emulated dense and cublas CUDA baselines match the float64 reference", "[cuda_emulated][baselines]") {
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::f16, Dtype::bf16);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1, 1, 64, 64},    // a single query and key
      {2, 4, 2, 33, 33, 40, 24},  // GQA, odd sizes: every GEMM dimension ragged against the 16-wide tiles
      {1, 3, 1, 20, 50, 64, 64},  // MQA, Lq < Lk
      {1, 2, 1, 50, 20, 32, 48},  // Lq > Lk: under causal the first 30 rows see nothing
  };
  std::uint64_t seed = 1001;
  for (const Shape& s : shapes) check_baselines(testing::make_problem(s, mask, dtype), seed++);
}

TEST_CASE("emulated dense and cublas CUDA baselines follow byte-map masks", "[cuda_emulated][baselines]") {
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  Problem p = testing::make_problem({1, 2, 1, 70, 70, 32, 32}, "full", dtype);
  p.mask = make_mask("document", {{"doc_lens", "20,7,30,13"}, {"causal", true}}, p.mask_shape());
  check_baselines(p, 1011);
  Problem w = testing::make_problem({2, 3, 1, 40, 60, 32, 32}, "full", dtype);
  w.mask = std::make_shared<const testing::ShiftedWindow>(w.mask_shape(), 5, 2, 30);
  check_baselines(w, 1012);
}
