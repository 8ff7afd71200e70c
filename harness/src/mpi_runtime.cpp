// The MPI runtime: real when the build found MPI (ATTNBENCH_HAVE_MPI), a single process otherwise.
#include "attnbench/mpi_runtime.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#ifdef ATTNBENCH_HAVE_MPI
#include <mpi.h>
#endif

namespace attnbench::mpi {

namespace {
bool g_active = false;
const void* g_cell_comm = nullptr;
}  // namespace

bool built() {
#ifdef ATTNBENCH_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "SLURM_PMIX_MAPPING_SERV"})
    if (std::getenv(v)) return true;
  return false;
}

void init(int* argc, char*** argv) {
#ifdef ATTNBENCH_HAVE_MPI
  if (g_active || !launched()) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  }
  g_active = true;
#else
  (void)argc;
  (void)argv;
#endif
}

void finalize() {
#ifdef ATTNBENCH_HAVE_MPI
  if (!g_active) return;
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
  g_active = false;
#endif
}

bool active() { return g_active; }

int world_rank() {
#ifdef ATTNBENCH_HAVE_MPI
  if (g_active) {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
  }
#endif
  return 0;
}

int world_size() {
#ifdef ATTNBENCH_HAVE_MPI
  if (g_active) {
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
  }
#endif
  return 1;
}

int local_size() {
  if (!g_active) return 1;
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
    if (const char* s = std::getenv(v)) {
      const int n = std::atoi(s);
      if (n > 0) return n;
    }
  return world_size();
}

int local_rank() {
  if (!g_active) return 0;
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* s = std::getenv(v)) return std::max(0, std::atoi(s));
  return world_rank();
}

std::string library_version() {
#ifdef ATTNBENCH_HAVE_MPI
  char buf[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(buf, &len);
  std::string s(buf, static_cast<std::size_t>(len));
  if (auto nl = s.find_first_of("\r\n,"); nl != std::string::npos) s.resize(nl);
  return s;
#else
  return "";
#endif
}

const void* cell_comm() { return g_cell_comm; }
void set_cell_comm(const void* comm) { g_cell_comm = comm; }

void quiet_barrier() {
#ifdef ATTNBENCH_HAVE_MPI
  if (!g_active) return;
  MPI_Request req;
  MPI_Ibarrier(MPI_COMM_WORLD, &req);
  int done = 0;
  while (true) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
#endif
}

}  // namespace attnbench::mpi
