// The entry point of attnbench_mpi_tests: MPI initialised around Catch2, output from rank 0 only. Run it
// under mpirun (CTest does, with 2 and 4 ranks); every rank runs every test case in the same order, since
// the methods under test make collective calls.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "attnbench/mpi_runtime.hpp"

int main(int argc, char** argv) {
  attnbench::mpi::init(&argc, &argv);
  if (!attnbench::mpi::active()) {
    std::fprintf(stderr, "attnbench_mpi_tests: start it under mpirun (e.g. mpirun -n 2 %s)\n", argv[0]);
    return 2;
  }
  // Other ranks' reports would interleave with rank 0's; their failures still set the exit status.
  if (attnbench::mpi::world_rank() != 0 && !std::freopen("/dev/null", "w", stdout)) return 2;
  const int failed = Catch::Session().run(argc, argv);
  int any = failed, worst = 0;
  MPI_Allreduce(&any, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  attnbench::mpi::finalize();
  return worst > 0 ? 1 : 0;
}
