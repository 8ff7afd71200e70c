// What the CUDA versions of the context-parallel methods (ring, striped, ulysses, tree_decode) share: the
// NCCL communicator of a cell (made once per MPI communicator and device, kept for the process), the
// block-attention kernel that folds one block of keys into a per-row online-softmax state on the device,
// the state's reset / rescale / normalise kernels, a row copy (gather_rows / scatter_rows on the device),
// CUDA-event timers for the compute and communication counters, and the common refusals.
// Included by kernels/distributed/*.cu only.
#pragma once
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "attnbench/method.hpp"
#include "kernels/cuda/cuda_plan.hpp"
#include "kernels/distributed/block_args.hpp"
#include "kernels/distributed/cp_common.hpp"

namespace attnbench::kernels::distributed::gpu {

// Throws std::runtime_error("NCCL error in WHAT: ...") unless r is ncclSuccess.
void check_nccl(ncclResult_t r, const char* what);

// The NCCL communicator over `comm`'s ranks on this rank's current device, NCCL rank = MPI rank. Made on
// first use (rank 0's unique id broadcast over `comm`, ncclCommInitRank) and kept for the process's
// lifetime, keyed by the world ranks of `comm` and the device; never destroyed. Collective over `comm`.
// Throws, on every rank alike, when two ranks of `comm` on one host share a device (NCCL cannot).
ncclComm_t nccl_comm(MPI_Comm comm);

// The online-softmax state of `rows` query rows on the device, one buffer: row max (log2 units of the
// scaled score) [rows], row sum [rows], unnormalised output [rows][value_dim]; sum and output adjacent so
// that one all-reduce adds both.
struct DeviceState {
  std::int64_t rows = 0, value_dim = 0;
  cuda::DeviceBuffer buf;
  DeviceState() = default;
  DeviceState(std::int64_t rows, std::int64_t value_dim);
  float* max() const { return buf.as<float>(); }
  float* sum() const { return buf.as<float>() + rows; }
  float* acc() const { return buf.as<float>() + 2 * rows; }
};

// launch_block_attention: BlockArgs (block_args.hpp) folded into `state`.
void launch_block_attention(const BlockArgs& a, Dtype dtype, const DeviceState& state, cudaStream_t s);
// max −inf, sum 0, output 0: no key seen yet.
void launch_reset(const DeviceState& state, cudaStream_t s);
// sum and output multiplied by 2^(max − global_max[row]) (0 where either is −inf); max left as it was.
void launch_rescale(const DeviceState& state, const float* global_max, cudaStream_t s);
// out[row][c] = acc[row][c] / sum[row] (0 for a row no key was visible to), narrowed to `dtype`.
void launch_normalise(const DeviceState& state, Dtype dtype, void* out, cudaStream_t s);
// gather_rows / scatter_rows of cp_common.hpp on the device: rows of a [bh, len, dim] tensor of element
// size `esize` to (gather) or from (scatter) a [bh, rows, dim] shard, shard row i = tensor row
// first + i·stride.
void launch_copy_rows(const void* src, void* dst, std::int64_t bh, std::int64_t len, std::int64_t dim,
                      std::size_t esize, std::int64_t first, std::int64_t stride, std::int64_t rows, bool scatter,
                      cudaStream_t s);

// Pairs of CUDA events around work on a stream; seconds() adds up the intervals of the last run.
class EventTimer {
 public:
  explicit EventTimer(int pairs);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void reset() { used_ = 0; }
  void start(cudaStream_t s);
  void stop(cudaStream_t s);
  double seconds() const;  // waits for the last interval to end

 private:
  std::vector<cudaEvent_t> start_, stop_;
  int used_ = 0;
  bool open_ = false;
};

// The counters of the CPU versions (reduce_counters in cp_common.hpp) from one rank's bytes, comm and
// compute seconds, reduced over the cell (a collective).
Counters reduce_device_counters(MPI_Comm comm, double bytes, double comm_s, double compute_s);

// Host bytes to a new device buffer, synchronously (prepare()).
cuda::DeviceBuffer upload_bytes(const void* data, std::size_t bytes);
// After the plan's stream is done, this rank's device bytes downloaded and gathered onto rank 0 (collect());
// empty on the other ranks. Collective over `comm`.
std::vector<Bytes> gather_device_to_root(MPI_Comm comm, const cuda::DeviceBuffer& mine);

// The refusals every CUDA context-parallel method shares: a CUDA device, heads a multiple of kv_heads,
// fp32/bf16/fp16, full or causal mask, head and value dims 1..256.
Support cuda_cp_supports(const std::string& method, const Problem& p, const Device& d);

}  // namespace attnbench::kernels::distributed::gpu
