// The CUDA/NCCL versions of ring, striped, ulysses and tree_decode, run as the runner runs them (the first
// N world ranks, one GPU each, the full inputs on every rank), rank 0's gathered output compared with the
// float64 oracle on fresh gaussian inputs; their counters; and their refusals on CUDA.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "nccl/nccl_support.hpp"
#include "support/counters.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;
using testing::counter;

namespace {

void check_method(const std::string& name, const Shape& shape, const std::string& mask, Dtype dtype, int ranks,
                  std::uint64_t seed) {
  const Problem p = testing::make_problem(shape, mask, dtype);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const testing::CudaDistributedRun r = testing::run_distributed_cuda(name, p, in, ranks);
  if (mpi::world_rank() != 0) return;
  const Tensor ref = testing::run_method("reference", p, in);
  REQUIRE(r.out.dtype() == p.dtype);
  const double err = testing::relative_l2(r.out, ref);
  const double tol = dtype == Dtype::f32 ? 1e-5 : 1e-2;
  INFO(name << " on cuda, ranks=" << ranks << ", " << p.describe() << " Dv" << p.value_dim << " seed " << seed
            << ": relative L2 error " << err << ", expected <= " << tol);
  CHECK(err <= tol);
  for (const Counters& c : r.counters) {
    CHECK(counter(c, "ranks") == ranks);
    CHECK(counter(c, "compute_s") > 0);
    // The most busy rank against the mean busy time (equal up to the rounding of the mean).
    CHECK(counter(c, "busy_s_max") >= counter(c, "busy_s_mean") * (1 - 1e-12));
    CHECK(counter(c, "imbalance") >= 1.0 - 1e-12);
  }
}

std::vector<int> rank_counts() {
  std::vector<int> n{mpi::world_size()};
  if (mpi::world_size() > 2) n.push_back(2);
  return n;
}

}  // namespace

TEST_CASE("ring, striped and ulysses on CUDA match the float64 reference in fp32", "[nccl][context_parallel]") {
  REQUIRE(mpi::world_size() >= 2);
  const std::vector<Shape> shapes = {
      {1, 4, 4, 64, 64, 32, 32},    // MHA, length divisible by 2 and 4
      {2, 4, 2, 37, 37, 40, 24},    // GQA, batch 2, odd length, value dim differing from head dim
      {1, 4, 1, 130, 130, 64, 64},  // MQA, length not divisible by 4
      {1, 8, 4, 301, 301, 128, 128}, {1, 4, 2, 50, 50, 256, 256},  // the largest head dim a warp holds
  };
  std::uint64_t seed = 1100;
  for (const std::string name : {"ring", "striped", "ulysses"})
    for (const std::string mask : {"full", "causal"})
      for (const int ranks : rank_counts())
        for (const Shape& s : shapes) check_method(name, s, mask, Dtype::f32, ranks, ++seed);
}

TEST_CASE("ring, striped and ulysses on CUDA match the float64 reference in bf16 and fp16",
          "[nccl][context_parallel]") {
  std::uint64_t seed = 1200;
  for (const Dtype dtype : {Dtype::bf16, Dtype::f16})
    for (const std::string name : {"ring", "striped", "ulysses"})
      for (const std::string mask : {"full", "causal"})
        check_method(name, {1, 4, 2, 77, 77, 64, 64}, mask, dtype, mpi::world_size(), ++seed);
}

TEST_CASE("tree_decode on CUDA matches the float64 reference", "[nccl][context_parallel]") {
  std::uint64_t seed = 1300;
  const std::vector<Shape> shapes = {
      {1, 8, 2, 1, 203, 64, 64},  // one new token, GQA 4:1, cache not divisible by the ranks
      {2, 4, 4, 4, 129, 32, 48},  // four tokens, batch 2, value dim 48
      {1, 4, 1, 3, 3, 32, 32},    // as long as the cache, MQA: causal rows see 1..3 keys
  };
  for (const int ranks : rank_counts())
    for (const std::string mask : {"full", "causal"})
      for (const Shape& s : shapes) {
        Shape t = s;
        if (t.kv_len < ranks) t.kv_len = t.q_len = ranks;
        check_method("tree_decode", t, mask, Dtype::f32, ranks, ++seed);
      }
  check_method("tree_decode", {1, 8, 2, 2, 500, 64, 64}, "causal", Dtype::bf16, mpi::world_size(), ++seed);
  check_method("tree_decode", {1, 8, 2, 2, 500, 128, 128}, "full", Dtype::f16, mpi::world_size(), ++seed);
}

TEST_CASE("the CUDA context-parallel methods count bytes where the CPU versions do", "[nccl][context_parallel]") {
  const int P = mpi::world_size();
  const Problem p = testing::make_problem({1, 4, 2, 64, 64, 32, 32}, "full");
  const Inputs in = datasets::gaussian_inputs(p, 1400);
  // Full-mask ring: every rank sends P − 1 blocks of its neighbours' keys and values (fp32).
  const testing::CudaDistributedRun r = testing::run_distributed_cuda("ring", p, in, P);
  if (mpi::world_rank() != 0) return;
  const double block = static_cast<double>(p.batch * p.kv_heads * (p.q_len / P) * (p.head_dim + p.value_dim)) * 4;
  INFO("ring comm_bytes_per_rank " << counter(r.counters.back(), "comm_bytes_per_rank") << ", expected about "
                                   << (P - 1) * block);
  CHECK(counter(r.counters.back(), "comm_bytes_per_rank") >= (P - 1) * block);
  CHECK(counter(r.counters.back(), "comm_s") > 0);
}

TEST_CASE("the CUDA context-parallel methods refuse what they cannot run, with a reason", "[nccl][context_parallel]") {
  const Device gpu{Device::Kind::cuda, testing::nccl_test_device()};
  auto refusal = [&](const std::string& name, const Problem& p, int ranks, const Device& d) {
    const Method& m = testing::method_named(name);
    const DeviceImpl* impl = MethodRegistry::instance().impl(name, Device::Kind::cuda);
    REQUIRE(impl != nullptr);
    const Support s = impl->supports(p, complete_params(m.info().params, {{"ranks", ranks}}), d);
    INFO(name << " on " << p.describe());
    CHECK_FALSE(s.ok);
    return s.reason;
  };
  const Problem ok = testing::make_problem({1, 4, 4, 64, 64, 32, 32}, "causal");
  for (const std::string name : {"ring", "striped", "ulysses", "tree_decode"})
    CHECK_THAT(refusal(name, ok, 2, Device{}), Catch::Contains("CUDA devices only"));
  const Problem wide = testing::make_problem({1, 4, 4, 64, 64, 512, 512}, "full");
  CHECK_THAT(refusal("ring", wide, 2, gpu), Catch::Contains("256"));
  const Problem odd_heads = testing::make_problem({1, 3, 3, 64, 64, 32, 32}, "causal");
  CHECK_THAT(refusal("ulysses", odd_heads, 2, gpu), Catch::Contains("heads divisible by ranks"));
  const Problem cross = testing::make_problem({1, 4, 4, 16, 64, 32, 32}, "full");
  for (const std::string name : {"ring", "striped", "ulysses"})
    CHECK_THAT(refusal(name, cross, 2, gpu), Catch::Contains("self-attention"));
  const Problem prefill = testing::make_problem({1, 4, 4, 512, 512, 32, 32}, "causal");
  CHECK_THAT(refusal("tree_decode", prefill, 2, gpu), Catch::Contains("decoding method"));
  Problem f64 = ok;
  f64.dtype = Dtype::f64;
  CHECK_THAT(refusal("striped", f64, 2, gpu), Catch::Contains("fp32, bf16 or fp16"));
}
