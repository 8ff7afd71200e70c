// The entry point of attnbench_nccl_tests: MPI initialised around Catch2, one CUDA device per rank, output
// from rank 0 only. Without a device for every rank (no driver, no GPU, fewer GPUs on a host than ranks
// on it) every rank exits 77, which CTest reports as skipped, after rank 0 says why.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "attnbench/backend.hpp"
#include "attnbench/mpi_runtime.hpp"
#include "nccl/nccl_support.hpp"

int main(int argc, char** argv) {
  attnbench::mpi::init(&argc, &argv);
  if (!attnbench::mpi::active()) {
    std::fprintf(stderr, "attnbench_nccl_tests: start it under mpirun (e.g. mpirun -n 2 %s)\n", argv[0]);
    return 2;
  }
  const int rank = attnbench::mpi::world_rank();
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);

  std::string why;
  attnbench::DeviceBackend* backend = attnbench::device_backend(attnbench::Device::Kind::cuda);
  int devices = 0;
  if (!backend) {
    why = "this build has no CUDA backend";
  } else {
    devices = backend->device_count(&why);
    if (devices == 0 && why.empty()) why = "no CUDA device";
    if (devices > 0 && devices < local_size)
      why = std::to_string(local_size) + " ranks on this host but " + std::to_string(devices) +
            " CUDA device(s); NCCL needs one GPU per rank";
  }
  int ok = why.empty() ? 1 : 0, all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all) {
    if (rank == 0)
      std::printf("SKIPPED: the NCCL context-parallel tests need a CUDA device per rank: %s\n",
                  why.empty() ? "another rank has none" : why.c_str());
    std::fflush(stdout);
    attnbench::mpi::finalize();
    return 77;
  }
  attnbench::testing::nccl_test_device() = local_rank % devices;
  backend->select(attnbench::Device{attnbench::Device::Kind::cuda, local_rank % devices});

  // Other ranks' reports would interleave with rank 0's; their failures still set the exit status.
  if (rank != 0 && !std::freopen("/dev/null", "w", stdout)) return 2;
  const int failed = Catch::Session().run(argc, argv);
  int any = failed, worst = 0;
  MPI_Allreduce(&any, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  attnbench::mpi::finalize();
  return worst > 0 ? 1 : 0;
}
