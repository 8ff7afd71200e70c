// What the NCCL tests share: the CUDA device main() selected for this rank, and a distributed run of a
// method's CUDA implementation the way the runner does it (first N world ranks, one GPU each).
#pragma once
#include <mpi.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "attnbench/backend.hpp"
#include "attnbench/mpi_runtime.hpp"
#include "support/problems.hpp"

namespace attnbench::testing {

// Set by main() before any test runs: this rank's CUDA device (local rank modulo the device count).
inline int& nccl_test_device() {
  static int d = 0;
  return d;
}

// The communicator of the first n world ranks (MPI_COMM_NULL elsewhere), freed at scope exit.
class FirstRanks {
 public:
  explicit FirstRanks(int n) {
    MPI_Comm_split(MPI_COMM_WORLD, mpi::world_rank() < n ? 0 : MPI_UNDEFINED, mpi::world_rank(), &c_);
  }
  ~FirstRanks() {
    if (c_ != MPI_COMM_NULL) MPI_Comm_free(&c_);
  }
  FirstRanks(const FirstRanks&) = delete;
  FirstRanks& operator=(const FirstRanks&) = delete;
  bool member() const { return c_ != MPI_COMM_NULL; }
  const MPI_Comm* get() const { return &c_; }

 private:
  MPI_Comm c_ = MPI_COMM_NULL;
};

struct CudaDistributedRun {
  bool member = false;
  Tensor out;                      // rank 0: the gathered output
  std::vector<Counters> counters;  // after the timed run and after the scored run
};

// As the runner runs a distributed cell on `--device cuda`: supports, plan, prepare, a warm-up and a timed
// run (counters), then poison, run, synchronise and collect into a poisoned host output (counters again).
inline CudaDistributedRun run_distributed_cuda(const std::string& name, const Problem& p, const Inputs& in, int ranks) {
  CudaDistributedRun r;
  FirstRanks comm(ranks);
  if (!comm.member()) return r;
  r.member = true;
  const Method& m = method_named(name);
  const DeviceImpl* impl = MethodRegistry::instance().impl(name, Device::Kind::cuda);
  REQUIRE(impl != nullptr);
  const Params params = complete_params(m.info().params, {{"ranks", ranks}});
  REQUIRE(m.ranks(params) == ranks);
  const Device gpu{Device::Kind::cuda, nccl_test_device()};
  DeviceBackend& backend = *device_backend(Device::Kind::cuda);
  backend.select(gpu);
  const Support s = impl->supports(p, params, gpu);
  INFO(name << " on cuda, " << p.describe() << ": " << s.reason);
  REQUIRE(s.ok);
  mpi::set_cell_comm(comm.get());
  {
    auto plan = impl->plan(p, params, gpu);
    plan->prepare(in);
    r.out = make_output(p, impl->output_dtype(p));
    plan->run(in, r.out);  // warm-up
    plan->run(in, r.out);
    backend.synchronize(gpu);
    r.counters.push_back(plan->counters());
    r.out.poison();
    plan->poison();
    plan->run(in, r.out);
    backend.synchronize(gpu);
    plan->collect(r.out);
    r.counters.push_back(plan->counters());
  }
  mpi::set_cell_comm(nullptr);
  return r;
}

}  // namespace attnbench::testing
