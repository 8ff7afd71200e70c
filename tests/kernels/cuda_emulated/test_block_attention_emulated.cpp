// The CUDA context-parallel methods' device kernels (kernels/distributed/block_attention_kernel.cuh) on
// the CPU under the warp emulator, against the float64 oracle: a rank's state reset, K/V blocks gathered
// by the row-copy kernel (4-byte and 2-byte units) and folded in by the block-attention kernel under the
// causal diagonal, two states merged by the rescale kernel as ranks merge theirs, the normalisation. The
// NCCL and MPI traffic around them is not emulated (tests/nccl/ runs it on devices).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cuda_emulated/emulated_kernels.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

TEST_CASE("emulated context-parallel block attention kernels match the float64 reference",
          "[cuda_emulated][context_parallel]") {
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::f16, Dtype::bf16);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const bool halves = GENERATE(false, true);
  struct Case {
    Shape shape;
    std::vector<std::int64_t> starts;
  };
  const std::vector<Case> cases = {
      {{1, 2, 1, 37, 37, 64, 64}, {0, 10, 20, 30}},  // MQA, four blocks of a shard's keys
      {{2, 4, 2, 20, 50, 33, 17}, {0, 25}},          // GQA, odd dims: rows copied in 2-byte units
      {{1, 2, 2, 30, 12, 256, 256}, {0, 3, 6, 9}},   // Lq > Lk: under causal the first 18 rows see nothing
  };
  std::uint64_t seed = 1101;
  for (const Case& c : cases) {
    const Problem p = testing::make_problem(c.shape, mask, dtype);
    INFO(p.describe() << " Dv" << p.value_dim << " mask " << mask << (halves ? " merged halves" : ""));
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const Tensor ref = testing::run_method("reference", p, in);
    const Tensor out = testing::emulated::run_block_attention(p, in, c.starts, halves);
    testing::check_matches_reference(out, ref, dtype);
  }
}
