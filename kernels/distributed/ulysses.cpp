// Method "ulysses" (DeepSpeed-Ulysses, Jacobs et al. 2023): the sequence is split over ranks; one
// all-to-all turns sequence shards into head shards (every rank gets the whole sequence for heads/P
// heads), each rank runs exact attention (flash_core) on its heads, and a second all-to-all turns the
// output back into sequence shards.
#include <omp.h>

#include <memory>

#include "kernels/cpu/flash_core.hpp"
#include "kernels/distributed/cp_common.hpp"
#include "kernels/distributed/ulysses_layout.hpp"

namespace attnbench {
namespace {

using namespace kernels::distributed;

class UlyssesPlan final : public Plan {
 public:
  UlyssesPlan(const Problem& p, int ranks) : p_(p), comm_(cell_communicator("ulysses", ranks)), size_(ranks) {
    MPI_Comm_rank(comm_, &rank_);
    esize_ = dtype_size(p.dtype);
    hp_ = p.heads / size_;
    const KvRange mine = kv_range(p, size_, rank_);
    // This rank's heads over the whole sequence: the problem flash_core runs.
    local_ = p;
    local_.heads = hp_;
    local_.kv_heads = mine.count;
    local_.mask = make_mask(p.causal() ? "causal" : "full", json::object(), local_.mask_shape());
    cfg_ = kernels::make_flash_config(local_, 64, 128);
    ws_ = kernels::FlashWorkspace(local_, cfg_, omp_get_max_threads());
    full_.q = Tensor(p.dtype, {p.batch, hp_, p.q_len, p.head_dim});
    full_.k = Tensor(p.dtype, {p.batch, mine.count, p.kv_len, p.head_dim});
    full_.v = Tensor(p.dtype, {p.batch, mine.count, p.kv_len, p.value_dim});
    attn_ = Tensor(p.dtype, {p.batch, hp_, p.q_len, p.value_dim});

    // All-to-all of the inputs: to rank d this rank sends, for its own positions, Q of d's heads, then K
    // and V of the kv heads d needs. Parts are sized in bytes; the self part is copied by MPI too.
    const std::int64_t n = rows(rank_);
    in_send_counts_.resize(static_cast<std::size_t>(size_));
    in_send_displs_.resize(static_cast<std::size_t>(size_));
    in_recv_counts_.resize(static_cast<std::size_t>(size_));
    in_recv_displs_.resize(static_cast<std::size_t>(size_));
    out_send_counts_.resize(static_cast<std::size_t>(size_));
    out_send_displs_.resize(static_cast<std::size_t>(size_));
    std::int64_t at = 0, rat = 0, oat = 0;
    for (int d = 0; d < size_; ++d) {
      const std::size_t i = static_cast<std::size_t>(d);
      in_send_counts_[i] = static_cast<int>(input_part_bytes(d, n));
      in_send_displs_[i] = static_cast<int>(at);
      at += in_send_counts_[i];
      in_recv_counts_[i] = static_cast<int>(input_part_bytes(rank_, rows(d)));
      in_recv_displs_[i] = static_cast<int>(rat);
      rat += in_recv_counts_[i];
      // Output: to rank s its positions of this rank's heads; from rank d, this rank's positions of d's heads.
      out_send_counts_[i] = static_cast<int>(output_part_bytes(rows(d)));
      out_send_displs_[i] = static_cast<int>(oat);
      oat += out_send_counts_[i];
    }
    in_send_.resize(static_cast<std::size_t>(at));
    in_recv_.resize(static_cast<std::size_t>(rat));
    out_send_.resize(static_cast<std::size_t>(oat));
    out_.resize(static_cast<std::size_t>(size_) * output_part_bytes(n));
    for (int d = 0; d < size_; ++d) {
      if (d != rank_)
        sent_bytes_ += in_send_counts_[static_cast<std::size_t>(d)] + out_send_counts_[static_cast<std::size_t>(d)];
    }
  }

  // This rank's sequence shard, laid out by destination as the all-to-all sends it (untimed).
  void prepare(const Inputs& in) override {
    const Problem& p = p_;
    pack_sequence_shard(p, in, rank_, size_, esize_, in_send_displs_, in_send_.data());
  }

  void run(const Inputs&, Tensor&) override {
    const Problem& p = p_;
    clock_.reset();
    clock_.comm([&] {
      MPI_Alltoallv(in_send_.data(), in_send_counts_.data(), in_send_displs_.data(), MPI_BYTE, in_recv_.data(),
                    in_recv_counts_.data(), in_recv_displs_.data(), MPI_BYTE, comm_);
    });
    clock_.sent(static_cast<double>(sent_bytes_));
    const KvRange kv = kv_range(p, size_, rank_);
    clock_.compute([&] {
      // Each source's positions into their place in the whole sequence of this rank's heads.
      for (int s = 0; s < size_; ++s) {
        const std::int64_t n = rows(s), first = chunk_start(p.q_len, size_, s);
        const char* src = in_recv_.data() + in_recv_displs_[static_cast<std::size_t>(s)];
        scatter_rows(src, p.batch * hp_, p.q_len, p.head_dim, esize_, first, 1, n, full_.q.data());
        src += static_cast<std::size_t>(p.batch * hp_ * n * p.head_dim) * esize_;
        scatter_rows(src, p.batch * kv.count, p.kv_len, p.head_dim, esize_, first, 1, n, full_.k.data());
        src += static_cast<std::size_t>(p.batch * kv.count * n * p.head_dim) * esize_;
        scatter_rows(src, p.batch * kv.count, p.kv_len, p.value_dim, esize_, first, 1, n, full_.v.data());
      }
      kernels::flash_forward_cpu(local_, full_, attn_, cfg_, ws_);
      for (int s = 0; s < size_; ++s)
        gather_rows(attn_.data(), p.batch * hp_, p.q_len, p.value_dim, esize_, chunk_start(p.q_len, size_, s), 1,
                    rows(s), out_send_.data() + out_send_displs_[static_cast<std::size_t>(s)]);
    });
    // Back to sequence shards: from rank d, this rank's positions of d's heads (the output shard, kept
    // in that [d][batch][heads/P][rows][value_dim] layout until collect()).
    const int part = static_cast<int>(output_part_bytes(rows(rank_)));
    std::vector<int>& rc = out_recv_counts_;
    if (rc.empty()) {
      rc.assign(static_cast<std::size_t>(size_), part);
      out_recv_displs_.resize(static_cast<std::size_t>(size_));
      for (int d = 0; d < size_; ++d) out_recv_displs_[static_cast<std::size_t>(d)] = d * part;
    }
    clock_.comm([&] {
      MPI_Alltoallv(out_send_.data(), out_send_counts_.data(), out_send_displs_.data(), MPI_BYTE, out_.data(),
                    rc.data(), out_recv_displs_.data(), MPI_BYTE, comm_);
    });
  }

  void poison() override { fill_nan(out_, p_.dtype); }

  void collect(Tensor& out) override {
    const std::vector<Bytes> shards = gather_to_root(comm_, out_);
    if (rank_ != 0) return;
    unpack_outputs(p_, size_, esize_, shards, out.data());
  }

  Counters counters() const override { return reduce_counters(comm_, clock_); }

 private:
  std::int64_t rows(int r) const { return chunk_size(p_.q_len, size_, r); }
  // Q of d's heads plus K and V of the kv heads d needs, for n positions.
  std::size_t input_part_bytes(int d, std::int64_t n) const {
    return kernels::distributed::input_part_bytes(p_, size_, esize_, d, n);
  }
  std::size_t output_part_bytes(std::int64_t n) const {
    return kernels::distributed::output_part_bytes(p_, size_, esize_, n);
  }

  Problem p_, local_;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::size_t esize_ = 4;
  std::int64_t hp_ = 1;
  kernels::FlashConfig cfg_;
  kernels::FlashWorkspace ws_;
  Inputs full_;
  Tensor attn_;
  Bytes in_send_, in_recv_, out_send_, out_;
  std::vector<int> in_send_counts_, in_send_displs_, in_recv_counts_, in_recv_displs_;
  std::vector<int> out_send_counts_, out_send_displs_, out_recv_counts_, out_recv_displs_;
  double sent_bytes_ = 0;
  RunClock clock_;
};

class Ulysses final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "ulysses";
    m.family = Family::distributed;
    m.summary =
        "exact attention over MPI ranks: all-to-all from sequence shards to head shards, local flash attention "
        "over the whole sequence for heads/ranks heads, all-to-all back";
    m.reference =
        "Jacobs et al., DeepSpeed Ulysses: System Optimizations for Enabling Training of Extreme Long Sequence "
        "Transformer Models (2023)";
    m.params = {ranks_param()};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = distributed_supports(*this, "ulysses", p, params, d); !s) return s;
    const int P = ranks_of(params);
    if (Support s = self_attention_only("ulysses", p, P); !s) return s;
    if (Support s = ulysses_heads_support(p, P); !s) return s;
    // Alltoallv counts and displacements are int: every rank's buffers must stay under 2 GiB.
    const std::int64_t kvc = std::max<std::int64_t>(1, p.kv_heads / P), chunk = (p.q_len + P - 1) / P;
    const double per_head = static_cast<double>(p.batch) * dtype_size(p.dtype);
    const double send = per_head * chunk * (p.heads * p.head_dim + P * kvc * (p.head_dim + p.value_dim));
    const double recv = per_head * p.q_len * (p.heads / P * p.head_dim + kvc * (p.head_dim + p.value_dim));
    if (std::max(send, recv) > std::numeric_limits<int>::max())
      return Support::no("ulysses all-to-all buffers would exceed 2 GiB per rank (MPI int counts); use more ranks");
    return Support::yes();
  }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<UlyssesPlan>(p, ranks_of(params));
  }
  int ranks(const Params& params) const override { return ranks_of(params); }
};

ATTNBENCH_REGISTER_METHOD(Ulysses);

}  // namespace
}  // namespace attnbench
