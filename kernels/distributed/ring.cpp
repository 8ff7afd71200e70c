// Methods "ring" and "striped": the sequence split over MPI ranks, key/value blocks passed around the
// ring while each rank folds the block it holds into its queries' online-softmax state.
//
// ring (Liu et al. 2023): rank r holds a contiguous chunk of the sequence. Under a causal mask blocks of
// later ranks are invisible and skipped, and a block is forwarded only while a later rank still needs
// it, so the work grows with the rank index (the imbalance the counters show).
// striped (Brandon et al. 2023): rank r holds positions r, r + P, r + 2P, …, so every block is a shifted
// causal block (the diagonal or one below it) and the causal work is the same on every rank.
#include <omp.h>

#include <memory>
#include <utility>

#include "kernels/distributed/block_attention.hpp"
#include "kernels/distributed/cp_common.hpp"
#include "kernels/distributed/ring_schedule.hpp"

namespace attnbench {
namespace {

using namespace kernels::distributed;

class RingPlan final : public Plan, private RingSchedule {
 public:
  RingPlan(const Problem& p, Layout layout, int ranks, const char* name)
      : p_(p), layout_(layout), comm_(cell_communicator(name, ranks)), size_(ranks) {
    MPI_Comm_rank(comm_, &rank_);
    esize_ = dtype_size(p.dtype);
    causal_ = p.causal();
    static_cast<RingSchedule&>(*this) = RingSchedule{p.q_len, rank_, size_, layout, causal_};
    std::int64_t most = 0;
    for (int r = 0; r < size_; ++r) most = std::max(most, rows_of(r));
    rows_ = rows_of(rank_);
    const std::int64_t kv_bh = p.batch * p.kv_heads;
    BlockShape s;
    s.batch = p.batch;
    s.heads = p.heads;
    s.kv_heads = p.kv_heads;
    s.q_rows = rows_;
    s.head_dim = p.head_dim;
    s.value_dim = p.value_dim;
    s.scale = p.scale;
    kernel_ = BlockAttention(s, p.dtype, most, omp_get_max_threads());
    state_ = SoftmaxState(s.rows(), p.value_dim);
    q_.resize(static_cast<std::size_t>(p.batch * p.heads * rows_ * p.head_dim) * esize_);
    own_.resize(block_bytes(rows_));
    const std::size_t buf = static_cast<std::size_t>(kv_bh * most * (p.head_dim + p.value_dim)) * esize_;
    recv_[0].resize(buf);
    recv_[1].resize(buf);
    out_.resize(static_cast<std::size_t>(p.batch * p.heads * rows_ * p.value_dim) * esize_);
  }

  void prepare(const Inputs& in) override {
    const Problem& p = p_;
    gather_rows(in.q.data(), p.batch * p.heads, p.q_len, p.head_dim, esize_, first(rank_), stride(), rows_, q_.data());
    const std::int64_t kv_bh = p.batch * p.kv_heads;
    gather_rows(in.k.data(), kv_bh, p.kv_len, p.head_dim, esize_, first(rank_), stride(), rows_, own_.data());
    gather_rows(in.v.data(), kv_bh, p.kv_len, p.value_dim, esize_, first(rank_), stride(), rows_,
                own_.data() + static_cast<std::size_t>(kv_bh * rows_ * p.head_dim) * esize_);
  }

  void run(const Inputs&, Tensor&) override {
    clock_.reset();
    clock_.compute([&] { state_.reset(); });
    const int next = (rank_ + 1) % size_, prev = (rank_ + size_ - 1) % size_;
    const char* held = own_.data();  // the block this step computes on
    int spare = 0;                   // the receive buffer not holding `held`
    for (int t = 0; t < size_; ++t) {
      const int src = (rank_ - t + size_) % size_;
      const int incoming = (rank_ - t - 1 + 2 * size_) % size_;  // the block arriving for step t + 1
      const bool send = t + 1 < size_ && needs_forward(t);
      const bool recv = t + 1 < size_ && needs_receive(t);
      MPI_Request reqs[2];
      int nreq = 0;
      const int held_bytes = static_cast<int>(block_bytes(rows_of(src)));
      clock_.comm([&] {
        if (recv)
          MPI_Irecv(recv_[spare].data(), static_cast<int>(block_bytes(rows_of(incoming))), MPI_BYTE, prev, t, comm_,
                    &reqs[nreq++]);
        if (send) MPI_Isend(held, held_bytes, MPI_BYTE, next, t, comm_, &reqs[nreq++]);
      });
      if (send) clock_.sent(held_bytes);
      if (const std::int64_t diag = diagonal(src); diag != kSkip) {
        clock_.compute([&] { compute_block(held, rows_of(src), diag); });
        clock_.scored(static_cast<double>(p_.batch * p_.heads) * visible_pairs(rows_, rows_of(src), diag, causal_));
      }
      clock_.comm([&] { MPI_Waitall(nreq, reqs, MPI_STATUSES_IGNORE); });
      if (!recv) break;  // nothing more arrives: under a causal ring only earlier ranks' blocks matter
      held = recv_[spare].data();
      spare ^= 1;
    }
    clock_.compute([&] { normalise(state_, p_.dtype, out_.data()); });
  }

  void poison() override { fill_nan(out_, p_.dtype); }

  void collect(Tensor& out) override {
    const std::vector<Bytes> shards = gather_to_root(comm_, out_);
    if (rank_ != 0) return;
    for (int r = 0; r < size_; ++r)
      scatter_rows(shards[static_cast<std::size_t>(r)].data(), p_.batch * p_.heads, p_.q_len, p_.value_dim, esize_,
                   first(r), stride(), rows_of(r), out.data());
  }

  Counters counters() const override { return reduce_counters(comm_, clock_); }

 private:
  std::size_t block_bytes(std::int64_t rows) const {
    return static_cast<std::size_t>(p_.batch * p_.kv_heads * rows * (p_.head_dim + p_.value_dim)) * esize_;
  }

  void compute_block(const char* block, std::int64_t kv_rows, std::int64_t diag) {
    const std::size_t k_bytes = static_cast<std::size_t>(p_.batch * p_.kv_heads * kv_rows * p_.head_dim) * esize_;
    kernel_.accumulate(q_.data(), block, block + k_bytes, kv_rows, diag, state_);
  }

  Problem p_;
  Layout layout_;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::size_t esize_ = 4;
  bool causal_ = false;
  std::int64_t rows_ = 0;
  BlockAttention kernel_;
  SoftmaxState state_;
  Bytes q_, own_, recv_[2], out_;  // shards in the input's element type; a block is K then V
  RunClock clock_;
};

class RingBase : public Method {
 public:
  RingBase(const char* name, Layout layout) : name_(name), layout_(layout) {}

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = distributed_supports(*this, name_, p, params, d); !s) return s;
    if (Support s = self_attention_only(name_, p, ranks_of(params)); !s) return s;
    const std::int64_t rows = (p.q_len + ranks_of(params) - 1) / ranks_of(params);
    if (static_cast<double>(p.batch * p.kv_heads * rows * (p.head_dim + p.value_dim)) * dtype_size(p.dtype) >
        std::numeric_limits<int>::max())
      return Support::no(std::string(name_) + " sends a rank's keys and values as one MPI message of under 2 GiB; " +
                         "this block is larger: use more ranks");
    return Support::yes();
  }
  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<RingPlan>(p, layout_, ranks_of(params), name_);
  }
  int ranks(const Params& params) const override { return ranks_of(params); }

 private:
  const char* name_;
  Layout layout_;
};

class Ring final : public RingBase {
 public:
  Ring() : RingBase("ring", Layout::contiguous) {}
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "ring";
    m.family = Family::distributed;
    m.summary =
        "exact attention over MPI ranks: contiguous sequence chunks, K/V blocks passed around a ring (overlapped "
        "with compute), partial outputs merged by log-sum-exp; causal skips later ranks' blocks";
    m.reference = "Liu, Zaharia & Abbeel, Ring Attention with Blockwise Transformers for Near-Infinite Context (2023)";
    m.params = {ranks_param()};
    m.backends = {"cpu"};
    return m;
  }
};

class Striped final : public RingBase {
 public:
  Striped() : RingBase("striped", Layout::striped) {}
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "striped";
    m.family = Family::distributed;
    m.summary =
        "ring attention with tokens dealt round-robin to ranks, so that causal work is the same on every rank "
        "(exact, MPI ranks)";
    m.reference = "Brandon et al., Striped Attention: Faster Ring Attention for Causal Transformers (2023)";
    m.params = {ranks_param()};
    m.backends = {"cpu"};
    return m;
  }
};

ATTNBENCH_REGISTER_METHOD(Ring);
ATTNBENCH_REGISTER_METHOD(Striped);

}  // namespace
}  // namespace attnbench
