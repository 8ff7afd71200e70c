// decode_splitk's CUDA kernels (kernels/cuda/decode_splitk_kernel.cuh: the split kernel and the
// log-sum-exp merge) run on the CPU under the warp emulator (emulated_kernels.hpp) against the float64
// oracle, with the device plan's own arguments (split_args_for) and the launcher's choice of instance: fp32, fp16 and
// bf16, GQA groups, query rows across several row tiles, head and value dims on both sides of 128, one split (direct
// output) and several, causal splits that see nothing.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cuda_emulated/emulated_kernels.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;
using attnbench::testing::emulated::run_decode_splitk;

namespace {

void check_decode(const Problem& p, std::int64_t splits, std::uint64_t seed) {
  INFO(p.describe() << " Dv" << p.value_dim << " mask " << p.mask->name() << " splits " << splits);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor ref = testing::run_method("reference", p, in);
  const Tensor out = run_decode_splitk(p, in, splits, emu::Schedule::round_robin);
  testing::check_matches_reference(out, ref, p.dtype);
  // A warp that runs ahead of the others must not change a bit: the barriers order every shared row.
  const Tensor skewed = run_decode_splitk(p, in, splits, emu::Schedule::reversed_warps);
  CHECK(std::memcmp(out.data(), skewed.data(), out.nbytes()) == 0);
}

}  // namespace

TEST_CASE("emulated decode_splitk CUDA kernels match the float64 reference", "[cuda_emulated][decode_splitk]") {
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::f16, Dtype::bf16);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  struct Case {
    Shape shape;
    std::int64_t splits;
  };
  const std::vector<Case> cases = {
      {{1, 4, 1, 1, 300, 64, 64}, 1},    // MQA, one query, one split: the direct output
      {{2, 4, 2, 3, 333, 128, 128}, 3},  // GQA, splits of 111 keys (two chunks, a ragged one)
      {{1, 8, 1, 5, 200, 256, 160}, 4},  // 40 rows: three row tiles; head dim 256, value dim over 128
      {{1, 2, 2, 20, 70, 96, 200}, 7},   // Lq = 20 of 70 keys: causal splits that see nothing
      {{1, 2, 1, 9, 5, 64, 64}, 2},      // Lq > Lk: under causal the first rows see no key at all
  };
  std::uint64_t seed = 801;
  for (const Case& c : cases) check_decode(testing::make_problem(c.shape, mask, dtype), c.splits, seed++);
}
