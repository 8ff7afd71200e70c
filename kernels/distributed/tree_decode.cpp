// Method "tree_decode" (Tree Attention, Shyam et al. 2024): decoding against a KV cache sharded over
// MPI ranks. Every rank holds all queries and a contiguous shard of the cache, computes its partial
// (row max, row sum, unnormalised output), and two all-reduces combine them exactly: the max first, then
// the sums and outputs rescaled to it. MPI's all-reduce is the tree (logarithmic depth in the ranks).
#include <omp.h>

#include <memory>

#include "kernels/distributed/block_attention.hpp"
#include "kernels/distributed/cp_common.hpp"

namespace attnbench {
namespace {

using namespace kernels::distributed;

class TreeDecodePlan final : public Plan {
 public:
  TreeDecodePlan(const Problem& p, int ranks) : p_(p), comm_(cell_communicator("tree_decode", ranks)), size_(ranks) {
    MPI_Comm_rank(comm_, &rank_);
    esize_ = dtype_size(p.dtype);
    first_ = chunk_start(p.kv_len, size_, rank_);
    rows_ = chunk_size(p.kv_len, size_, rank_);
    BlockShape s;
    s.batch = p.batch;
    s.heads = p.heads;
    s.kv_heads = p.kv_heads;
    s.q_rows = p.q_len;
    s.head_dim = p.head_dim;
    s.value_dim = p.value_dim;
    s.scale = p.scale;
    kernel_ = BlockAttention(s, p.dtype, rows_, omp_get_max_threads());
    state_ = SoftmaxState(s.rows(), p.value_dim);
    global_max_.resize(static_cast<std::size_t>(s.rows()));
    reduced_.resize(static_cast<std::size_t>(s.rows() * (1 + p.value_dim)));
    reduced_state_ = SoftmaxState(s.rows(), p.value_dim);
    q_.resize(p.q_len > 0 ? static_cast<std::size_t>(p.batch * p.heads * p.q_len * p.head_dim) * esize_ : 0);
    k_.resize(static_cast<std::size_t>(p.batch * p.kv_heads * rows_ * p.head_dim) * esize_);
    v_.resize(static_cast<std::size_t>(p.batch * p.kv_heads * rows_ * p.value_dim) * esize_);
    out_.resize(static_cast<std::size_t>(s.rows() * p.value_dim) * esize_);
    // Query i sits at key position i + kv_len − q_len; key j of this shard at first_ + j.
    diagonal_ = p.causal() ? p.kv_len - p.q_len - first_ : kNoMask;
  }

  void prepare(const Inputs& in) override {
    std::memcpy(q_.data(), in.q.data(), q_.size());
    const std::int64_t kv_bh = p_.batch * p_.kv_heads;
    gather_rows(in.k.data(), kv_bh, p_.kv_len, p_.head_dim, esize_, first_, 1, rows_, k_.data());
    gather_rows(in.v.data(), kv_bh, p_.kv_len, p_.value_dim, esize_, first_, 1, rows_, v_.data());
  }

  void run(const Inputs&, Tensor&) override {
    clock_.reset();
    const std::int64_t rows = state_.rows;
    clock_.compute([&] {
      state_.reset();
      kernel_.accumulate_decode(q_.data(), k_.data(), v_.data(), rows_, diagonal_, state_);
    });
    clock_.comm([&] {
      MPI_Allreduce(state_.max.data(), global_max_.data(), static_cast<int>(rows), MPI_FLOAT, MPI_MAX, comm_);
    });
    clock_.compute([&] {
      rescale_to(state_, global_max_.data());
      std::copy(state_.sum.begin(), state_.sum.end(), reduced_.begin());
      std::copy(state_.acc.begin(), state_.acc.end(), reduced_.begin() + rows);
    });
    clock_.comm([&] {
      MPI_Allreduce(MPI_IN_PLACE, reduced_.data(), static_cast<int>(reduced_.size()), MPI_FLOAT, MPI_SUM, comm_);
    });
    clock_.sent(static_cast<double>(rows * sizeof(float) + reduced_.size() * sizeof(float)));
    clock_.compute([&] {
      std::copy(reduced_.begin(), reduced_.begin() + rows, reduced_state_.sum.begin());
      std::copy(reduced_.begin() + rows, reduced_.end(), reduced_state_.acc.begin());
      normalise(reduced_state_, p_.dtype, out_.data());
    });
  }

  void poison() override { fill_nan(out_, p_.dtype); }

  // Every rank holds the whole output after the all-reduce; rank 0's is the result.
  void collect(Tensor& out) override {
    if (rank_ == 0) std::memcpy(out.data(), out_.data(), out_.size());
  }

  Counters counters() const override { return reduce_counters(comm_, clock_); }

 private:
  Problem p_;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::size_t esize_ = 4;
  std::int64_t first_ = 0, rows_ = 0, diagonal_ = kNoMask;
  BlockAttention kernel_;
  SoftmaxState state_, reduced_state_;
  std::vector<float> global_max_, reduced_;  // reduced_: [rows] sums then [rows][value_dim] outputs
  Bytes q_, k_, v_, out_;
  RunClock clock_;
};

class TreeDecode final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "tree_decode";
    m.family = Family::distributed;
    m.summary =
        "exact decoding over MPI ranks: the KV cache sharded, per-rank softmax partials (max, sum, output) "
        "combined by all-reduce";
    m.reference =
        "Shyam et al., Tree Attention: Topology-aware Decoding for Long-Context Attention on GPU Clusters (2024)";
    m.params = {ranks_param()};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = distributed_supports(*this, "tree_decode", p, params, d); !s) return s;
    if (Support s = tree_decode_shape_support(p, ranks_of(params)); !s) return s;
    if (static_cast<double>(p.batch * p.heads * p.q_len) * (1 + p.value_dim) > std::numeric_limits<int>::max())
      return Support::no(
          "tree_decode reduces the partial outputs in one all-reduce of under 2^31 floats; this is more");
    return Support::yes();
  }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<TreeDecodePlan>(p, ranks_of(params));
  }
  int ranks(const Params& params) const override { return ranks_of(params); }
};

ATTNBENCH_REGISTER_METHOD(TreeDecode);

}  // namespace
}  // namespace attnbench
