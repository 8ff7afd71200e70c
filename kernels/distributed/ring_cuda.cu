// "ring" and "striped" on CUDA devices: the rank layout, block schedule and causal diagonals of ring.cpp,
// the key/value blocks passed to the next rank with ncclSend/ncclRecv (one NCCL group per step, into a
// double buffer) on a communication stream forked from and joined back to cuda::stream(), so that the
// transfer of the next block overlaps the block-attention kernel on the current one.
#include <algorithm>
#include <memory>

#include "kernels/distributed/cp_cuda_common.cuh"
#include "kernels/distributed/ring_schedule.hpp"

namespace attnbench {
namespace {

using namespace kernels::distributed;
using namespace kernels::distributed::gpu;

class RingCudaPlan final : public Plan, private RingSchedule {
 public:
  RingCudaPlan(const Problem& p, Layout layout, int ranks, const char* name)
      : p_(p),
        layout_(layout),
        comm_(cell_communicator(name, ranks)),
        size_(ranks),
        comm_timer_(ranks),
        compute_timer_(ranks + 2) {
    MPI_Comm_rank(comm_, &rank_);
    nccl_ = nccl_comm(comm_);
    esize_ = dtype_size(p.dtype);
    causal_ = p.causal();
    static_cast<RingSchedule&>(*this) = RingSchedule{p.q_len, rank_, size_, layout, causal_};
    std::int64_t most = 0;
    for (int r = 0; r < size_; ++r) most = std::max(most, rows_of(r));
    rows_ = rows_of(rank_);
    state_ = DeviceState(p.batch * p.heads * rows_, p.value_dim);
    q_ = cuda::DeviceBuffer(static_cast<std::size_t>(p.batch * p.heads * rows_ * p.head_dim) * esize_);
    own_ = cuda::DeviceBuffer(block_bytes(rows_));
    recv_[0] = cuda::DeviceBuffer(block_bytes(most));
    recv_[1] = cuda::DeviceBuffer(block_bytes(most));
    out_ = cuda::DeviceBuffer(static_cast<std::size_t>(p.batch * p.heads * rows_ * p.value_dim) * esize_);
    cuda::check(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda::check(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), "cudaEventCreate");
    cuda::check(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming), "cudaEventCreate");
  }

  ~RingCudaPlan() override {
    cudaStreamSynchronize(cuda::stream());
    cudaStreamSynchronize(comm_stream_);
    cudaEventDestroy(fork_);
    cudaEventDestroy(join_);
    cudaStreamDestroy(comm_stream_);
  }

  // This rank's queries and its own key/value block (K then V), gathered on the host and uploaded.
  void prepare(const Inputs& in) override {
    const Problem& p = p_;
    Bytes q(static_cast<std::size_t>(p.batch * p.heads * rows_ * p.head_dim) * esize_), kv(block_bytes(rows_));
    gather_rows(in.q.data(), p.batch * p.heads, p.q_len, p.head_dim, esize_, first(rank_), stride(), rows_, q.data());
    const std::int64_t kv_bh = p.batch * p.kv_heads;
    gather_rows(in.k.data(), kv_bh, p.kv_len, p.head_dim, esize_, first(rank_), stride(), rows_, kv.data());
    gather_rows(in.v.data(), kv_bh, p.kv_len, p.value_dim, esize_, first(rank_), stride(), rows_,
                kv.data() + static_cast<std::size_t>(kv_bh * rows_ * p.head_dim) * esize_);
    if (!q.empty()) cuda::check(cudaMemcpy(q_.data(), q.data(), q.size(), cudaMemcpyHostToDevice), "upload");
    if (!kv.empty()) cuda::check(cudaMemcpy(own_.data(), kv.data(), kv.size(), cudaMemcpyHostToDevice), "upload");
  }

  void run(const Inputs&, Tensor&) override {
    const cudaStream_t s = cuda::stream();
    comm_timer_.reset();
    compute_timer_.reset();
    sent_ = 0;
    compute_timer_.start(s);
    launch_reset(state_, s);
    compute_timer_.stop(s);
    const int next = (rank_ + 1) % size_, prev = (rank_ + size_ - 1) % size_;
    const char* held = own_.as<const char>();  // the block this step computes on
    int spare = 0;                             // the receive buffer not holding `held`
    for (int t = 0; t < size_; ++t) {
      const int src = (rank_ - t + size_) % size_;
      const int incoming = (rank_ - t - 1 + 2 * size_) % size_;  // the block arriving for step t + 1
      const bool send = t + 1 < size_ && needs_forward(t);
      const bool recv = t + 1 < size_ && needs_receive(t);
      if (send || recv) {
        // The transfer starts once everything before it on the compute stream is done: the buffer it
        // receives into was read by the previous step's kernel.
        cuda::check(cudaEventRecord(fork_, s), "cudaEventRecord");
        cuda::check(cudaStreamWaitEvent(comm_stream_, fork_, 0), "cudaStreamWaitEvent");
        comm_timer_.start(comm_stream_);
        check_nccl(ncclGroupStart(), "ncclGroupStart");
        if (recv)
          check_nccl(ncclRecv(recv_[spare].data(), block_bytes(rows_of(incoming)), ncclChar, prev, nccl_, comm_stream_),
                     "ncclRecv");
        if (send)
          check_nccl(ncclSend(held, block_bytes(rows_of(src)), ncclChar, next, nccl_, comm_stream_), "ncclSend");
        check_nccl(ncclGroupEnd(), "ncclGroupEnd");
        comm_timer_.stop(comm_stream_);
        cuda::check(cudaEventRecord(join_, comm_stream_), "cudaEventRecord");
        if (send) sent_ += static_cast<double>(block_bytes(rows_of(src)));
      }
      if (const std::int64_t diag = diagonal(src); diag != kSkip) {
        compute_timer_.start(s);
        compute_block(held, rows_of(src), diag, s);
        compute_timer_.stop(s);
      }
      if (send || recv) cuda::check(cudaStreamWaitEvent(s, join_, 0), "cudaStreamWaitEvent");
      if (!recv) break;  // nothing more arrives: under a causal ring only earlier ranks' blocks matter
      held = recv_[spare].as<const char>();
      spare ^= 1;
    }
    compute_timer_.start(s);
    launch_normalise(state_, p_.dtype, out_.data(), s);
    compute_timer_.stop(s);
  }

  void poison() override { cuda::check(cudaMemsetAsync(out_.data(), 0xFF, out_.bytes(), cuda::stream()), "poison"); }

  void collect(Tensor& out) override {
    const std::vector<Bytes> shards = gather_device_to_root(comm_, out_);
    if (rank_ != 0) return;
    for (int r = 0; r < size_; ++r)
      scatter_rows(shards[static_cast<std::size_t>(r)].data(), p_.batch * p_.heads, p_.q_len, p_.value_dim, esize_,
                   first(r), stride(), rows_of(r), out.data());
  }

  Counters counters() const override {
    return reduce_device_counters(comm_, sent_, comm_timer_.seconds(), compute_timer_.seconds());
  }

 private:
  std::size_t block_bytes(std::int64_t rows) const {
    return static_cast<std::size_t>(p_.batch * p_.kv_heads * rows * (p_.head_dim + p_.value_dim)) * esize_;
  }

  void compute_block(const char* block, std::int64_t kv_rows, std::int64_t diag, cudaStream_t s) {
    const std::size_t k_bytes = static_cast<std::size_t>(p_.batch * p_.kv_heads * kv_rows * p_.head_dim) * esize_;
    launch_block_attention(block_args_for(p_, q_.data(), block, block + k_bytes, rows_, kv_rows, diag), p_.dtype,
                           state_, s);
  }

  Problem p_;
  Layout layout_;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  ncclComm_t nccl_ = nullptr;
  std::size_t esize_ = 4;
  bool causal_ = false;
  std::int64_t rows_ = 0;
  DeviceState state_;
  cuda::DeviceBuffer q_, own_, recv_[2], out_;  // in the input's element type; a block is K then V
  cudaStream_t comm_stream_ = nullptr;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  EventTimer comm_timer_, compute_timer_;
  double sent_ = 0;
};

class RingCudaBase : public DeviceImpl {
 public:
  RingCudaBase(const char* name, Layout layout) : name_(name), layout_(layout) {}
  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = cuda_cp_supports(name_, p, d); !s) return s;
    return self_attention_only(name_, p, ranks_of(params));
  }
  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<RingCudaPlan>(p, layout_, ranks_of(params), name_);
  }

 private:
  const char* name_;
  Layout layout_;
};

class RingCuda final : public RingCudaBase {
 public:
  RingCuda() : RingCudaBase("ring", Layout::contiguous) {}
};
class StripedCuda final : public RingCudaBase {
 public:
  StripedCuda() : RingCudaBase("striped", Layout::striped) {}
};

ATTNBENCH_REGISTER_CUDA_IMPL("ring", RingCuda);
ATTNBENCH_REGISTER_CUDA_IMPL("striped", StripedCuda);

}  // namespace
}  // namespace attnbench
