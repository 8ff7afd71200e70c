// "tree_decode" on CUDA devices: as tree_decode.cpp, every rank holds all queries and a contiguous shard
// of the KV cache; the block-attention kernel computes this rank's partial state, ncclAllReduce(max)
// gives every row's global max, the partial sums and outputs are rescaled to it, and one
// ncclAllReduce(sum) over the adjacent sums and outputs combines them exactly.
#include <memory>

#include "kernels/distributed/cp_cuda_common.cuh"

namespace attnbench {
namespace {

using namespace kernels::distributed;
using namespace kernels::distributed::gpu;

class TreeDecodeCudaPlan final : public Plan {
 public:
  TreeDecodeCudaPlan(const Problem& p, int ranks)
      : p_(p), comm_(cell_communicator("tree_decode", ranks)), size_(ranks), comm_timer_(2), compute_timer_(3) {
    MPI_Comm_rank(comm_, &rank_);
    nccl_ = nccl_comm(comm_);
    esize_ = dtype_size(p.dtype);
    first_ = chunk_start(p.kv_len, size_, rank_);
    rows_ = chunk_size(p.kv_len, size_, rank_);
    state_ = DeviceState(p.batch * p.heads * p.q_len, p.value_dim);
    global_max_ = cuda::DeviceBuffer(static_cast<std::size_t>(state_.rows) * sizeof(float));
    q_ = cuda::DeviceBuffer(static_cast<std::size_t>(p.batch * p.heads * p.q_len * p.head_dim) * esize_);
    k_ = cuda::DeviceBuffer(static_cast<std::size_t>(p.batch * p.kv_heads * rows_ * p.head_dim) * esize_);
    v_ = cuda::DeviceBuffer(static_cast<std::size_t>(p.batch * p.kv_heads * rows_ * p.value_dim) * esize_);
    out_ = cuda::DeviceBuffer(static_cast<std::size_t>(state_.rows * p.value_dim) * esize_);
    // Query i sits at key position i + kv_len − q_len; key j of this shard at first_ + j.
    diagonal_ = p.causal() ? p.kv_len - p.q_len - first_ : kNoMask;
  }

  void prepare(const Inputs& in) override {
    const std::int64_t kv_bh = p_.batch * p_.kv_heads;
    Bytes k(k_.bytes()), v(v_.bytes());
    gather_rows(in.k.data(), kv_bh, p_.kv_len, p_.head_dim, esize_, first_, 1, rows_, k.data());
    gather_rows(in.v.data(), kv_bh, p_.kv_len, p_.value_dim, esize_, first_, 1, rows_, v.data());
    if (q_.bytes()) cuda::check(cudaMemcpy(q_.data(), in.q.data(), q_.bytes(), cudaMemcpyHostToDevice), "upload");
    if (!k.empty()) cuda::check(cudaMemcpy(k_.data(), k.data(), k.size(), cudaMemcpyHostToDevice), "upload");
    if (!v.empty()) cuda::check(cudaMemcpy(v_.data(), v.data(), v.size(), cudaMemcpyHostToDevice), "upload");
  }

  void run(const Inputs&, Tensor&) override {
    const cudaStream_t s = cuda::stream();
    comm_timer_.reset();
    compute_timer_.reset();
    const std::size_t rows = static_cast<std::size_t>(state_.rows);
    compute_timer_.start(s);
    launch_reset(state_, s);
    launch_block_attention(block_args_for(p_, q_.data(), k_.data(), v_.data(), p_.q_len, rows_, diagonal_), p_.dtype,
                           state_, s);
    compute_timer_.stop(s);
    comm_timer_.start(s);
    check_nccl(ncclAllReduce(state_.max(), global_max_.data(), rows, ncclFloat, ncclMax, nccl_, s), "ncclAllReduce");
    comm_timer_.stop(s);
    compute_timer_.start(s);
    launch_rescale(state_, global_max_.as<const float>(), s);
    compute_timer_.stop(s);
    comm_timer_.start(s);
    check_nccl(ncclAllReduce(state_.sum(), state_.sum(), rows * static_cast<std::size_t>(1 + p_.value_dim), ncclFloat,
                             ncclSum, nccl_, s),
               "ncclAllReduce");
    comm_timer_.stop(s);
    compute_timer_.start(s);
    launch_normalise(state_, p_.dtype, out_.data(), s);
    compute_timer_.stop(s);
  }

  void poison() override { cuda::check(cudaMemsetAsync(out_.data(), 0xFF, out_.bytes(), cuda::stream()), "poison"); }

  // Every rank holds the whole output after the all-reduce; rank 0's is the result.
  void collect(Tensor& out) override {
    cuda::check(cudaStreamSynchronize(cuda::stream()), "run");
    if (rank_ != 0) return;
    if (out.nbytes() != out_.bytes()) throw std::logic_error("tree_decode: output size differs from the device's");
    if (out_.bytes())
      cuda::check(cudaMemcpy(out.data(), out_.data(), out_.bytes(), cudaMemcpyDeviceToHost), "download");
  }

  Counters counters() const override {
    const double rows = static_cast<double>(state_.rows);
    const double bytes = (rows + rows * static_cast<double>(1 + p_.value_dim)) * sizeof(float);
    return reduce_device_counters(comm_, bytes, comm_timer_.seconds(), compute_timer_.seconds());
  }

 private:
  Problem p_;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  ncclComm_t nccl_ = nullptr;
  std::size_t esize_ = 4;
  std::int64_t first_ = 0, rows_ = 0, diagonal_ = kNoMask;
  DeviceState state_;  // [max][sum][output]: sum and output reduced by one all-reduce
  cuda::DeviceBuffer global_max_, q_, k_, v_, out_;
  EventTimer comm_timer_, compute_timer_;
};

class TreeDecodeCuda final : public DeviceImpl {
 public:
  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = cuda_cp_supports("tree_decode", p, d); !s) return s;
    if (Support s = tree_decode_shape_support(p, ranks_of(params)); !s) return s;
    return Support::yes();
  }
  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<TreeDecodeCudaPlan>(p, ranks_of(params));
  }
};

ATTNBENCH_REGISTER_CUDA_IMPL("tree_decode", TreeDecodeCuda);

}  // namespace
}  // namespace attnbench
