// The context-parallel methods (ring, striped, ulysses, tree_decode) run as the runner runs them — the
// first N world ranks, each building the same inputs — and rank 0's gathered output is compared with the
// float64 oracle; their refusals, and their counters (bytes sent, time split, load imbalance).
#include <mpi.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "attnbench/mpi_runtime.hpp"
#include "datasets/generators.hpp"
#include "support/counters.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;
using testing::counter;

namespace {

int world_size() { return mpi::world_size(); }
int world_rank() { return mpi::world_rank(); }

// The communicator of the first n world ranks (MPI_COMM_NULL elsewhere), freed at scope exit.
class SubComm {
 public:
  explicit SubComm(int n) { MPI_Comm_split(MPI_COMM_WORLD, world_rank() < n ? 0 : MPI_UNDEFINED, world_rank(), &c_); }
  ~SubComm() {
    if (c_ != MPI_COMM_NULL) MPI_Comm_free(&c_);
  }
  SubComm(const SubComm&) = delete;
  SubComm& operator=(const SubComm&) = delete;
  bool member() const { return c_ != MPI_COMM_NULL; }
  const MPI_Comm* get() const { return &c_; }

 private:
  MPI_Comm c_ = MPI_COMM_NULL;
};

struct DistributedRun {
  bool member = false;
  Tensor out;                      // rank 0: the gathered output
  std::vector<Counters> counters;  // one per timed run, rank 0's
};

// What the runner does with a distributed cell: plan on every participating rank, prepare, a warm-up
// and `runs` runs (counters after each), then poison, one more run and collect into a poisoned output.
DistributedRun run_distributed(const std::string& name, const Problem& p, const Inputs& in, int ranks, int runs = 1) {
  DistributedRun r;
  SubComm comm(ranks);
  if (!comm.member()) return r;
  r.member = true;
  const Method& m = testing::method_named(name);
  const Params params = complete_params(m.info().params, {{"ranks", ranks}});
  REQUIRE(m.ranks(params) == ranks);
  const Support s = m.supports(p, params, Device{});
  INFO(name << " on " << p.describe() << ": " << s.reason);
  REQUIRE(s.ok);
  mpi::set_cell_comm(comm.get());
  auto plan = m.plan(p, params, Device{});
  plan->prepare(in);
  r.out = make_output(p, m.output_dtype(p));
  plan->run(in, r.out);  // warm-up
  for (int i = 0; i < runs; ++i) {
    plan->run(in, r.out);
    r.counters.push_back(plan->counters());
  }
  r.out.poison();
  plan->poison();
  plan->run(in, r.out);
  plan->collect(r.out);
  r.counters.push_back(plan->counters());
  mpi::set_cell_comm(nullptr);
  return r;
}

// Runs `name` on `ranks` ranks and, on rank 0, checks its output against the float64 oracle.
void check_method(const std::string& name, const Shape& shape, const std::string& mask, Dtype dtype, int ranks,
                  std::uint64_t seed) {
  const Problem p = testing::make_problem(shape, mask, dtype);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const DistributedRun r = run_distributed(name, p, in, ranks);
  if (world_rank() != 0) return;
  const Tensor ref = testing::run_method("reference", p, in);
  const double err = testing::relative_l2(r.out, ref);
  const double tol = dtype == Dtype::f32 ? 1e-5 : 1e-2;
  INFO(name << " ranks=" << ranks << " on " << p.describe() << " Dv" << p.value_dim << ": relative L2 error " << err
            << ", expected <= " << tol);
  CHECK(err <= tol);
  CHECK(counter(r.counters.back(), "ranks") == ranks);
}

// The rank counts to test in this world: all of it, and 2 when the world is larger (a sub-communicator
// with idle ranks beside it, as in a run whose largest cell needs more ranks).
std::vector<int> rank_counts() {
  std::vector<int> n{world_size()};
  if (world_size() > 2) n.push_back(2);
  return n;
}

const std::vector<Shape>& prefill_shapes() {
  static const std::vector<Shape> all = {
      {1, 4, 4, 64, 64, 32, 32},    // MHA, length divisible by 2 and 4
      {2, 4, 2, 37, 37, 40, 24},    // GQA, batch 2, odd length, value dim differing from head dim
      {1, 4, 1, 130, 130, 64, 64},  // MQA, length not divisible by 4, several tiles per shard
      {1, 8, 4, 301, 301, 64, 64},  // GQA 2:1, tiles ragged on every rank
  };
  return all;
}

}  // namespace

TEST_CASE("ring, striped and ulysses match the float64 reference in fp32", "[mpi][context_parallel]") {
  REQUIRE(world_size() >= 2);
  std::uint64_t seed = 100;
  for (const std::string name : {"ring", "striped", "ulysses"})
    for (const std::string mask : {"full", "causal"})
      for (const int ranks : rank_counts())
        for (const Shape& s : prefill_shapes()) check_method(name, s, mask, Dtype::f32, ranks, ++seed);
}

TEST_CASE("ring, striped and ulysses match the float64 reference in bf16", "[mpi][context_parallel]") {
  std::uint64_t seed = 200;
  for (const std::string name : {"ring", "striped", "ulysses"})
    for (const std::string mask : {"full", "causal"})
      check_method(name, {1, 4, 2, 77, 77, 64, 64}, mask, Dtype::bf16, world_size(), ++seed);
}

TEST_CASE("tree_decode matches the float64 reference for decoding and short prefixes", "[mpi][context_parallel]") {
  std::uint64_t seed = 300;
  const std::vector<Shape> shapes = {
      {1, 8, 2, 1, 203, 64, 64},  // one new token, GQA 4:1, cache not divisible by the ranks
      {2, 4, 4, 4, 129, 32, 48},  // four tokens, batch 2, value dim 48
      {1, 4, 1, 3, 3, 32, 32},    // as long as the cache (self-attention), MQA: causal rows see 1..3 keys
  };
  for (const int ranks : rank_counts())
    for (const std::string mask : {"full", "causal"})
      for (const Shape& s : shapes) {
        Shape t = s;
        if (t.kv_len < ranks) t.kv_len = t.q_len = ranks;
        check_method("tree_decode", t, mask, Dtype::f32, ranks, ++seed);
      }
  check_method("tree_decode", {1, 8, 2, 2, 500, 64, 64}, "causal", Dtype::bf16, world_size(), ++seed);
}

TEST_CASE("context-parallel methods refuse what they cannot run, with a reason", "[mpi][context_parallel]") {
  const Device cpu{};
  auto refusal = [&](const std::string& name, const Problem& p, int ranks) {
    const Method& m = testing::method_named(name);
    const Support s = m.supports(p, complete_params(m.info().params, {{"ranks", ranks}}), cpu);
    INFO(name << " on " << p.describe());
    CHECK_FALSE(s.ok);
    return s.reason;
  };
  const Problem odd_heads = testing::make_problem({1, 3, 3, 64, 64, 32, 32}, "causal");
  CHECK_THAT(refusal("ulysses", odd_heads, 2), Catch::Contains("heads divisible by ranks"));
  const Problem gqa = testing::make_problem({1, 12, 4, 64, 64, 32, 32}, "full");
  CHECK_THAT(refusal("ulysses", gqa, 6), Catch::Contains("kv_heads"));
  const Problem cross = testing::make_problem({1, 4, 4, 16, 64, 32, 32}, "full");
  for (const std::string name : {"ring", "striped", "ulysses"})
    CHECK_THAT(refusal(name, cross, 2), Catch::Contains("self-attention"));
  const Problem tiny = testing::make_problem({1, 4, 4, 3, 3, 32, 32}, "causal");
  CHECK_THAT(refusal("ring", tiny, 4), Catch::Contains("at least one token per rank"));
  const Problem prefill = testing::make_problem({1, 4, 4, 512, 512, 32, 32}, "causal");
  CHECK_THAT(refusal("tree_decode", prefill, 2), Catch::Contains("decoding method"));
  const Problem window = [] {
    Problem p = testing::make_problem({1, 4, 4, 64, 64, 32, 32}, "full");
    p.mask = make_mask("sliding_window", json::object(), p.mask_shape());
    return p;
  }();
  for (const std::string name : {"ring", "striped", "ulysses", "tree_decode"})
    CHECK_THAT(refusal(name, window, 2), Catch::Contains("full and causal masks only"));
  const Problem half = testing::make_problem({1, 4, 4, 64, 64, 32, 32}, "full", Dtype::f16);
  CHECK_THAT(refusal("ring", half, 2), Catch::Contains("fp32 or bf16"));
  for (const std::string name : {"ring", "striped", "ulysses", "tree_decode"}) {
    const Method& m = testing::method_named(name);
    CHECK(m.info().family == Family::distributed);
    CHECK(m.info().backends == std::vector<std::string>{"cpu"});
    CHECK(m.ranks(complete_params(m.info().params, json::object())) == 2);
  }
}

TEST_CASE("context-parallel counters: bytes sent, time split, causal imbalance of ring against striped",
          "[mpi][context_parallel]") {
  const int P = world_size();
  const Shape shape{1, 4, 4, 1024, 1024, 64, 64};
  const Problem causal = testing::make_problem(shape, "causal");
  const Problem full = testing::make_problem(shape, "full");
  const Inputs in = datasets::gaussian_inputs(causal, 7);
  const double n = 1024.0 / P, block = 1 * 4 * n * (64 + 64) * 4.0;  // one rank's K and V in bytes

  // Full mask, ring: every rank sends P - 1 blocks. Causal: rank P - 2 forwards P - 1 blocks.
  const DistributedRun ring_full = run_distributed("ring", full, in, P);
  const DistributedRun ring = run_distributed("ring", causal, in, P, 5);
  const DistributedRun striped = run_distributed("striped", causal, in, P, 5);
  const DistributedRun ulysses = run_distributed("ulysses", causal, in, P);
  const Problem decode = testing::make_problem({1, 4, 4, 2, 1024, 64, 64}, "causal");
  const DistributedRun tree = run_distributed("tree_decode", decode, datasets::gaussian_inputs(decode, 8), P);
  if (world_rank() != 0) return;

  for (const DistributedRun* r : {&ring_full, &ring, &striped, &ulysses, &tree}) {
    const Counters& c = r->counters.back();
    CHECK(counter(c, "ranks") == P);
    CHECK(counter(c, "comm_s") >= 0);
    CHECK(counter(c, "compute_s") > 0);
    CHECK(counter(c, "busy_s_max") >= counter(c, "busy_s_mean"));
    CHECK(counter(c, "busy_s_mean") > 0);
    CHECK(counter(c, "imbalance") >= 1.0);
    CHECK(counter(c, "comm_bytes_per_rank") > 0);
  }
  CHECK(counter(ring_full.counters.back(), "comm_bytes_per_rank") == Approx((P - 1) * block));
  CHECK(counter(ring.counters.back(), "comm_bytes_per_rank") == Approx((P - 1) * block));
  CHECK(counter(striped.counters.back(), "comm_bytes_per_rank") == Approx((P - 1) * block));
  // Ulysses: Q, K, V of the other ranks' heads for this rank's positions, and their outputs back.
  const double part = n * (4.0 / P) * 64 * 4;
  CHECK(counter(ulysses.counters.back(), "comm_bytes_per_rank") == Approx((P - 1) * 4 * part));
  // Tree decoding: the row maxima, then row sums and outputs, of 4 heads × 2 queries.
  CHECK(counter(tree.counters.back(), "comm_bytes_per_rank") == Approx(8 * 4.0 + 8 * 65 * 4.0));

  // Causal ring: rank r scores r full blocks and a half one; striped ranks about the same share each.
  // The work ratio is deterministic (the busy-time ratio beside it depends on what else the machine
  // runs, so it is reported, not asserted): contiguous chunks of c rows give max/mean =
  // ((P−1)c² + c(c+1)/2) / ((P−1)c²/2 + c(c+1)/2).
  const double ring_work = counter(ring.counters.back(), "work_imbalance");
  const double striped_work = counter(striped.counters.back(), "work_imbalance");
  INFO("work imbalance: ring " << ring_work << ", striped " << striped_work << " over " << P << " ranks");
  {
    const double c = n;  // 1024 / P rows per rank
    const double expected = ((P - 1) * c * c + c * (c + 1) / 2) / ((P - 1) * c * c / 2 + c * (c + 1) / 2);
    CHECK(ring_work == Approx(expected).epsilon(1e-12));
  }
  CHECK(ring_work > 1.3);
  CHECK(striped_work < 1.05);
  CHECK(counter(ring_full.counters.back(), "work_imbalance") == Approx(1.0));
}
