// MPI as attnbench uses it: initialised only when the process was started by mpirun (or srun), so that
// a plain `attnbench run` never touches MPI. Distributed methods get their cell's communicator here.
//
// This header names no MPI type, so that plugins and builds without MPI compile against it; a
// distributed method includes <mpi.h> itself and reads the communicator through cell_comm().
#pragma once
#include <string>

namespace attnbench::mpi {

bool built();     // this build links MPI
bool launched();  // the environment says a launcher started this process (OMPI_COMM_WORLD_SIZE, PMI_SIZE, ...)
// MPI_Init_thread (funneled) when built and launched; otherwise nothing. Safe to call twice.
void init(int* argc, char*** argv);
void finalize();
bool active();  // initialised here and not yet finalised
int world_rank();  // 0 when not active
int world_size();  // 1 when not active
int local_size();  // ranks on this node (1 when not active)
int local_rank();  // this rank's index on its node (0 when not active): picks its GPU
std::string library_version();  // MPI_Get_library_version's first line, "" without MPI

// The communicator of the distributed cell being planned or run: the first N ranks of the world, as an
// opaque pointer to an MPI_Comm (null outside such a cell). Set by the runner.
const void* cell_comm();
void set_cell_comm(const void* comm);

// Waits at a barrier of the whole world without spinning (MPI_Ibarrier polled with short sleeps), so that
// ranks idle while rank 0 times a single-process cell do not steal its cores.
void quiet_barrier();

}  // namespace attnbench::mpi
