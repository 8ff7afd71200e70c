// The device side the CUDA context-parallel methods share: the launchers of the kernels in
// block_attention_kernel.cuh (block attention into an online-softmax state, its reset / rescale /
// normalise, a row copy), event timers, and the cached NCCL communicator.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels/cuda/elements.cuh"
#include "kernels/distributed/cp_cuda_common.cuh"
//
#include "kernels/distributed/block_attention_kernel.cuh"

namespace attnbench::kernels::distributed::gpu {
namespace {

using namespace block_kernels;

template <class T>
void launch_block_typed(const BlockArgs& a, const DeviceState& st, cudaStream_t s) {
  const long long bh = a.batch * a.heads;
  const long long xblocks = (a.q_rows + kWarps - 1) / kWarps;
  if (xblocks > 0x7fffffffLL) throw std::logic_error("block attention: too many query rows for one grid");
  const dim3 grid(static_cast<unsigned>(xblocks), static_cast<unsigned>(std::min<long long>(bh, kMaxGridY)));
  block_attention_kernel<T><<<grid, kWarps * 32, 0, s>>>(a, st.max(), st.sum(), st.acc());
  cuda::check_launch("block_attention_kernel");
}

}  // namespace

void check_nccl(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return;
  throw std::runtime_error(std::string("NCCL error in ") + what + ": " + ncclGetErrorString(r));
}

ncclComm_t nccl_comm(MPI_Comm comm) {
  int rank = 0, size = 1, device = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  cuda::check(cudaGetDevice(&device), "cudaGetDevice");
  // The key: the world ranks of `comm` in its rank order, and this rank's device.
  MPI_Group group, world;
  MPI_Comm_group(comm, &group);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  std::vector<int> local(static_cast<std::size_t>(size)), global(static_cast<std::size_t>(size));
  std::iota(local.begin(), local.end(), 0);
  MPI_Group_translate_ranks(group, size, local.data(), world, global.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  static std::map<std::pair<std::vector<int>, int>, ncclComm_t> cache;
  const auto key = std::make_pair(global, device);
  const auto it = cache.find(key);
  // Every rank must agree whether to make one (ncclCommInitRank is collective).
  int have = it != cache.end() ? 1 : 0, all = 0;
  MPI_Allreduce(&have, &all, 1, MPI_INT, MPI_MIN, comm);
  if (all) return it->second;

  // Two ranks of one communicator on one device: NCCL refuses; say so on every rank instead of hanging.
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const long long mine[2] = {static_cast<long long>(std::hash<std::string>{}(host)), device};
  std::vector<long long> everyone(static_cast<std::size_t>(2 * size));
  MPI_Allgather(mine, 2, MPI_LONG_LONG, everyone.data(), 2, MPI_LONG_LONG, comm);
  for (int a = 0; a < size; ++a)
    for (int b = a + 1; b < size; ++b)
      if (everyone[2 * a] == everyone[2 * b] && everyone[2 * a + 1] == everyone[2 * b + 1])
        throw std::runtime_error("NCCL needs one GPU per rank: ranks " + std::to_string(a) + " and " +
                                 std::to_string(b) + " of the cell share device " +
                                 std::to_string(everyone[2 * a + 1]) + " of one host; start at most as many ranks " +
                                 "per host as it has GPUs");

  ncclUniqueId id{};
  int ok = 1;
  if (rank == 0) ok = ncclGetUniqueId(&id) == ncclSuccess ? 1 : 0;
  MPI_Bcast(&ok, 1, MPI_INT, 0, comm);
  if (!ok) throw std::runtime_error("NCCL error in ncclGetUniqueId on rank 0 of the cell");
  MPI_Bcast(&id, static_cast<int>(sizeof id), MPI_BYTE, 0, comm);
  ncclComm_t c = nullptr;
  check_nccl(ncclCommInitRank(&c, size, id, rank), "ncclCommInitRank");
  cache[key] = c;  // one a few ranks held for this key (never expected) is left alone, not destroyed
  return c;
}

DeviceState::DeviceState(std::int64_t rows_, std::int64_t value_dim_)
    : rows(rows_), value_dim(value_dim_), buf(static_cast<std::size_t>(rows_ * (2 + value_dim_)) * sizeof(float)) {}

void launch_block_attention(const BlockArgs& a, Dtype dtype, const DeviceState& state, cudaStream_t s) {
  if (a.q_rows <= 0 || a.kv_rows <= 0 || a.batch * a.heads <= 0) return;
  if (a.head_dim > kMaxDim || a.value_dim > kMaxDim)
    throw std::logic_error("block attention: head_dim and value_dim must not exceed 256");
  if (a.kv_heads < 1 || a.heads % a.kv_heads != 0)
    throw std::logic_error("block attention: heads must be a multiple of kv_heads");
  switch (dtype) {
    case Dtype::f32:
      launch_block_typed<float>(a, state, s);
      break;
    case Dtype::bf16:
      launch_block_typed<__nv_bfloat16>(a, state, s);
      break;
    case Dtype::f16:
      launch_block_typed<__half>(a, state, s);
      break;
    default:
      throw std::logic_error("block attention: fp32, bf16 or fp16 inputs only");
  }
}

void launch_reset(const DeviceState& state, cudaStream_t s) {
  const long long total = state.rows * (2 + state.value_dim);
  if (total == 0) return;
  reset_kernel<<<grid_for(total), kThreads, 0, s>>>(state.max(), state.rows, total);
  cuda::check_launch("reset_kernel");
}

void launch_rescale(const DeviceState& state, const float* global_max, cudaStream_t s) {
  const long long total = state.rows * (state.value_dim + 1);
  if (total == 0) return;
  rescale_kernel<<<grid_for(total), kThreads, 0, s>>>(state.max(), state.sum(), state.acc(), global_max, state.rows,
                                                      state.value_dim);
  cuda::check_launch("rescale_kernel");
}

void launch_normalise(const DeviceState& state, Dtype dtype, void* out, cudaStream_t s) {
  const long long total = state.rows * state.value_dim;
  if (total == 0) return;
  const unsigned g = grid_for(total);
  switch (dtype) {
    case Dtype::f32:
      normalise_kernel<<<g, kThreads, 0, s>>>(state.sum(), state.acc(), static_cast<float*>(out), state.rows,
                                              state.value_dim);
      break;
    case Dtype::bf16:
      normalise_kernel<<<g, kThreads, 0, s>>>(state.sum(), state.acc(), static_cast<__nv_bfloat16*>(out), state.rows,
                                              state.value_dim);
      break;
    case Dtype::f16:
      normalise_kernel<<<g, kThreads, 0, s>>>(state.sum(), state.acc(), static_cast<__half*>(out), state.rows,
                                              state.value_dim);
      break;
    default:
      throw std::logic_error("normalise: fp32, bf16 or fp16 output only");
  }
  cuda::check_launch("normalise_kernel");
}

void launch_copy_rows(const void* src, void* dst, std::int64_t bh, std::int64_t len, std::int64_t dim,
                      std::size_t esize, std::int64_t first, std::int64_t stride, std::int64_t rows, bool scatter,
                      cudaStream_t s) {
  const long long row_bytes = dim * static_cast<long long>(esize);
  if (bh * rows * row_bytes == 0) return;
  const bool words = row_bytes % 4 == 0 && reinterpret_cast<std::uintptr_t>(src) % 4 == 0 &&
                     reinterpret_cast<std::uintptr_t>(dst) % 4 == 0;
  if (words) {
    const long long units = row_bytes / 4;
    copy_rows_kernel<<<grid_for(bh * rows * units), kThreads, 0, s>>>(static_cast<const std::uint32_t*>(src),
                                                                      static_cast<std::uint32_t*>(dst), bh, len, units,
                                                                      first, stride, rows, scatter);
  } else {
    if (row_bytes % 2 != 0) throw std::logic_error("copy_rows: rows of 2-byte or 4-byte elements only");
    const long long units = row_bytes / 2;
    copy_rows_kernel<<<grid_for(bh * rows * units), kThreads, 0, s>>>(static_cast<const std::uint16_t*>(src),
                                                                      static_cast<std::uint16_t*>(dst), bh, len, units,
                                                                      first, stride, rows, scatter);
  }
  cuda::check_launch("copy_rows_kernel");
}

EventTimer::EventTimer(int pairs) : start_(static_cast<std::size_t>(pairs)), stop_(static_cast<std::size_t>(pairs)) {
  for (int i = 0; i < pairs; ++i) {
    cuda::check(cudaEventCreate(&start_[static_cast<std::size_t>(i)]), "cudaEventCreate");
    cuda::check(cudaEventCreate(&stop_[static_cast<std::size_t>(i)]), "cudaEventCreate");
  }
}

EventTimer::~EventTimer() {
  for (std::size_t i = 0; i < start_.size(); ++i) {
    cudaEventDestroy(start_[i]);
    cudaEventDestroy(stop_[i]);
  }
}

void EventTimer::start(cudaStream_t s) {
  if (open_ || used_ >= static_cast<int>(start_.size()))
    throw std::logic_error("EventTimer: more intervals than sized");
  cuda::check(cudaEventRecord(start_[static_cast<std::size_t>(used_)], s), "cudaEventRecord");
  open_ = true;
}

void EventTimer::stop(cudaStream_t s) {
  if (!open_) throw std::logic_error("EventTimer: stop without start");
  cuda::check(cudaEventRecord(stop_[static_cast<std::size_t>(used_)], s), "cudaEventRecord");
  open_ = false;
  ++used_;
}

double EventTimer::seconds() const {
  double total = 0;
  for (int i = 0; i < used_; ++i) {
    const std::size_t k = static_cast<std::size_t>(i);
    cuda::check(cudaEventSynchronize(stop_[k]), "cudaEventSynchronize");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, start_[k], stop_[k]), "cudaEventElapsedTime");
    total += ms * 1e-3;
  }
  return total;
}

Counters reduce_device_counters(MPI_Comm comm, double bytes, double comm_s, double compute_s) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  double mine[3] = {bytes, comm_s, compute_s}, most[3] = {0, 0, 0};
  MPI_Allreduce(mine, most, 3, MPI_DOUBLE, MPI_MAX, comm);
  double busy_total = 0;
  MPI_Allreduce(&compute_s, &busy_total, 1, MPI_DOUBLE, MPI_SUM, comm);
  const double busy_mean = busy_total / size;
  return {{"ranks", static_cast<double>(size)},
          {"comm_bytes_per_rank", most[0]},
          {"comm_s", most[1]},
          {"compute_s", most[2]},
          {"busy_s_max", most[2]},
          {"busy_s_mean", busy_mean},
          {"imbalance", busy_mean > 0 ? most[2] / busy_mean : 1.0}};
}

cuda::DeviceBuffer upload_bytes(const void* data, std::size_t bytes) {
  cuda::DeviceBuffer b(bytes);
  if (bytes) cuda::check(cudaMemcpy(b.data(), data, bytes, cudaMemcpyHostToDevice), "upload");
  return b;
}

std::vector<Bytes> gather_device_to_root(MPI_Comm comm, const cuda::DeviceBuffer& mine) {
  Bytes host(mine.bytes());
  cuda::check(cudaStreamSynchronize(cuda::stream()), "run");
  if (!host.empty()) cuda::check(cudaMemcpy(host.data(), mine.data(), host.size(), cudaMemcpyDeviceToHost), "download");
  return gather_to_root(comm, host);
}

Support cuda_cp_supports(const std::string& method, const Problem& p, const Device& d) {
  if (d.is_cpu()) return Support::no(method + "'s CUDA implementation runs on CUDA devices only");
  if (p.kv_heads < 1 || p.heads % p.kv_heads != 0)
    return Support::no("heads (" + std::to_string(p.heads) + ") must be a multiple of kv_heads (" +
                       std::to_string(p.kv_heads) + ")");
  if (p.dtype != Dtype::f32 && p.dtype != Dtype::bf16 && p.dtype != Dtype::f16)
    return Support::no(method + " on CUDA computes in fp32 from fp32, bf16 or fp16 inputs, not " +
                       std::string(to_string(p.dtype)));
  if (!p.mask || (!p.mask->is_full() && !p.mask->is_causal()))
    return Support::no(method + " supports the full and causal masks only, not '" + (p.mask ? p.mask->name() : "") +
                       "'; run it on a full or causal problem");
  if (p.head_dim < 1 || p.head_dim > kMaxDim || p.value_dim < 1 || p.value_dim > kMaxDim)
    return Support::no(method + " on CUDA keeps a query row in one warp's registers: head_dim and value_dim 1..256, " +
                       "got " + std::to_string(p.head_dim) + " and " + std::to_string(p.value_dim));
  return Support::yes();
}

}  // namespace attnbench::kernels::distributed::gpu
