// "ulysses" on CUDA devices: the layout of ulysses.cpp, with each all-to-all a group of ncclSend/ncclRecv
// pairs (the part a rank keeps is a device copy), and the local exact attention over the whole sequence
// for this rank's heads/ranks heads done by the block-attention kernel with one block holding every key.
#include <algorithm>
#include <memory>

#include "kernels/distributed/cp_cuda_common.cuh"
#include "kernels/distributed/ulysses_layout.hpp"

namespace attnbench {
namespace {

using namespace kernels::distributed;
using namespace kernels::distributed::gpu;

class UlyssesCudaPlan final : public Plan {
 public:
  UlyssesCudaPlan(const Problem& p, int ranks)
      : p_(p), comm_(cell_communicator("ulysses", ranks)), size_(ranks), comm_timer_(2), compute_timer_(1) {
    MPI_Comm_rank(comm_, &rank_);
    nccl_ = nccl_comm(comm_);
    esize_ = dtype_size(p.dtype);
    hp_ = p.heads / size_;
    kv_ = kv_range(p, size_, rank_);
    const std::size_t P = static_cast<std::size_t>(size_);
    in_send_counts_.resize(P);
    in_send_displs_.resize(P);
    in_recv_counts_.resize(P);
    in_recv_displs_.resize(P);
    out_send_counts_.resize(P);
    out_send_displs_.resize(P);
    const std::int64_t n = rows(rank_);
    std::size_t at = 0, rat = 0, oat = 0;
    for (int d = 0; d < size_; ++d) {
      const std::size_t i = static_cast<std::size_t>(d);
      in_send_counts_[i] = input_part_bytes(d, n);
      in_send_displs_[i] = at;
      at += in_send_counts_[i];
      in_recv_counts_[i] = input_part_bytes(rank_, rows(d));
      in_recv_displs_[i] = rat;
      rat += in_recv_counts_[i];
      out_send_counts_[i] = output_part_bytes(rows(d));
      out_send_displs_[i] = oat;
      oat += out_send_counts_[i];
      if (d != rank_) sent_bytes_ += static_cast<double>(in_send_counts_[i] + out_send_counts_[i]);
    }
    in_send_ = cuda::DeviceBuffer(at);
    in_recv_ = cuda::DeviceBuffer(rat);
    out_send_ = cuda::DeviceBuffer(oat);
    out_ = cuda::DeviceBuffer(P * output_part_bytes(n));
    full_q_ = cuda::DeviceBuffer(static_cast<std::size_t>(p.batch * hp_ * p.q_len * p.head_dim) * esize_);
    full_k_ = cuda::DeviceBuffer(static_cast<std::size_t>(p.batch * kv_.count * p.kv_len * p.head_dim) * esize_);
    full_v_ = cuda::DeviceBuffer(static_cast<std::size_t>(p.batch * kv_.count * p.kv_len * p.value_dim) * esize_);
    attn_ = cuda::DeviceBuffer(static_cast<std::size_t>(p.batch * hp_ * p.q_len * p.value_dim) * esize_);
    state_ = DeviceState(p.batch * hp_ * p.q_len, p.value_dim);
  }

  // This rank's sequence shard, laid out by destination as the all-to-all sends it (untimed).
  void prepare(const Inputs& in) override {
    const Problem& p = p_;
    Bytes send(in_send_.bytes());
    pack_sequence_shard(p, in, rank_, size_, esize_, in_send_displs_, send.data());
    if (!send.empty())
      cuda::check(cudaMemcpy(in_send_.data(), send.data(), send.size(), cudaMemcpyHostToDevice), "upload");
  }

  void run(const Inputs&, Tensor&) override {
    const Problem& p = p_;
    const cudaStream_t s = cuda::stream();
    comm_timer_.reset();
    compute_timer_.reset();
    const std::size_t own_part = output_part_bytes(rows(rank_));
    comm_timer_.start(s);
    all_to_all(in_send_.as<const char>(), in_send_counts_, in_send_displs_, in_recv_.as<char>(), in_recv_counts_,
               in_recv_displs_, s);
    comm_timer_.stop(s);

    compute_timer_.start(s);
    // Each source's positions into their place in the whole sequence of this rank's heads.
    for (int src = 0; src < size_; ++src) {
      const std::int64_t n = rows(src), first = chunk_start(p.q_len, size_, src);
      const char* part = in_recv_.as<const char>() + in_recv_displs_[static_cast<std::size_t>(src)];
      launch_copy_rows(part, full_q_.data(), p.batch * hp_, p.q_len, p.head_dim, esize_, first, 1, n, true, s);
      part += static_cast<std::size_t>(p.batch * hp_ * n * p.head_dim) * esize_;
      launch_copy_rows(part, full_k_.data(), p.batch * kv_.count, p.kv_len, p.head_dim, esize_, first, 1, n, true, s);
      part += static_cast<std::size_t>(p.batch * kv_.count * n * p.head_dim) * esize_;
      launch_copy_rows(part, full_v_.data(), p.batch * kv_.count, p.kv_len, p.value_dim, esize_, first, 1, n, true, s);
    }
    launch_reset(state_, s);
    // self-attention: query i sees keys 0..i
    BlockArgs a =
        block_args_for(p, full_q_.data(), full_k_.data(), full_v_.data(), p.q_len, p.kv_len, p.causal() ? 0 : kNoMask);
    a.heads = hp_;  // this rank's heads, and the kv heads they read
    a.kv_heads = kv_.count;
    launch_block_attention(a, p.dtype, state_, s);
    launch_normalise(state_, p.dtype, attn_.data(), s);
    for (int d = 0; d < size_; ++d)
      launch_copy_rows(attn_.data(), out_send_.as<char>() + out_send_displs_[static_cast<std::size_t>(d)],
                       p.batch * hp_, p.q_len, p.value_dim, esize_, chunk_start(p.q_len, size_, d), 1, rows(d), false,
                       s);
    compute_timer_.stop(s);

    // Back to sequence shards: from rank d, this rank's positions of d's heads (the output shard, kept in
    // that [d][batch][heads/P][rows][value_dim] layout until collect()).
    if (out_recv_counts_.empty()) {
      out_recv_counts_.assign(static_cast<std::size_t>(size_), own_part);
      out_recv_displs_.resize(static_cast<std::size_t>(size_));
      for (int d = 0; d < size_; ++d)
        out_recv_displs_[static_cast<std::size_t>(d)] = static_cast<std::size_t>(d) * own_part;
    }
    comm_timer_.start(s);
    all_to_all(out_send_.as<const char>(), out_send_counts_, out_send_displs_, out_.as<char>(), out_recv_counts_,
               out_recv_displs_, s);
    comm_timer_.stop(s);
  }

  void poison() override { cuda::check(cudaMemsetAsync(out_.data(), 0xFF, out_.bytes(), cuda::stream()), "poison"); }

  void collect(Tensor& out) override {
    const std::vector<Bytes> shards = gather_device_to_root(comm_, out_);
    if (rank_ != 0) return;
    unpack_outputs(p_, size_, esize_, shards, out.data());
  }

  Counters counters() const override {
    return reduce_device_counters(comm_, sent_bytes_, comm_timer_.seconds(), compute_timer_.seconds());
  }

 private:
  std::int64_t rows(int r) const { return chunk_size(p_.q_len, size_, r); }
  std::size_t input_part_bytes(int d, std::int64_t n) const {
    return kernels::distributed::input_part_bytes(p_, size_, esize_, d, n);
  }
  std::size_t output_part_bytes(std::int64_t n) const {
    return kernels::distributed::output_part_bytes(p_, size_, esize_, n);
  }

  // An all-to-all of byte parts: one NCCL group of a send and a receive per other rank; this rank's own
  // part copied on the device.
  void all_to_all(const char* send, const std::vector<std::size_t>& send_counts,
                  const std::vector<std::size_t>& send_displs, char* recv, const std::vector<std::size_t>& recv_counts,
                  const std::vector<std::size_t>& recv_displs, cudaStream_t s) {
    const std::size_t me = static_cast<std::size_t>(rank_);
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int d = 0; d < size_; ++d) {
      const std::size_t i = static_cast<std::size_t>(d);
      if (d == rank_) continue;
      if (send_counts[i])
        check_nccl(ncclSend(send + send_displs[i], send_counts[i], ncclChar, d, nccl_, s), "ncclSend");
      if (recv_counts[i])
        check_nccl(ncclRecv(recv + recv_displs[i], recv_counts[i], ncclChar, d, nccl_, s), "ncclRecv");
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    if (send_counts[me])
      cuda::check(
          cudaMemcpyAsync(recv + recv_displs[me], send + send_displs[me], send_counts[me], cudaMemcpyDeviceToDevice, s),
          "all-to-all self part");
  }

  Problem p_;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  ncclComm_t nccl_ = nullptr;
  std::size_t esize_ = 4;
  std::int64_t hp_ = 1;
  KvRange kv_{0, 1};
  cuda::DeviceBuffer in_send_, in_recv_, out_send_, out_, full_q_, full_k_, full_v_, attn_;
  DeviceState state_;
  std::vector<std::size_t> in_send_counts_, in_send_displs_, in_recv_counts_, in_recv_displs_;
  std::vector<std::size_t> out_send_counts_, out_send_displs_, out_recv_counts_, out_recv_displs_;
  double sent_bytes_ = 0;
  EventTimer comm_timer_, compute_timer_;
};

class UlyssesCuda final : public DeviceImpl {
 public:
  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = cuda_cp_supports("ulysses", p, d); !s) return s;
    const int P = ranks_of(params);
    if (Support s = self_attention_only("ulysses", p, P); !s) return s;
    if (Support s = ulysses_heads_support(p, P); !s) return s;
    return Support::yes();
  }
  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<UlyssesCudaPlan>(p, ranks_of(params));
  }
};

ATTNBENCH_REGISTER_CUDA_IMPL("ulysses", UlyssesCuda);

}  // namespace
}  // namespace attnbench
