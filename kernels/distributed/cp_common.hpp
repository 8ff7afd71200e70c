// What the context-parallel methods (ring, striped, ulysses, tree_decode) share: the cell's communicator,
// the `ranks` parameter, their common refusals, how a sequence is split over ranks, and the counters
// every one of them reports (bytes sent, communication and compute time, per-rank busy time).
#pragma once
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "attnbench/method.hpp"
#include "attnbench/mpi_runtime.hpp"
#include "attnbench/problem.hpp"

namespace attnbench::kernels::distributed {

inline ParamSpec ranks_param() {
  return ParamSpec::integer("ranks", 2, 2, 1024, "MPI ranks the sequence (or KV cache) is split over");
}

inline int ranks_of(const Params& params) { return static_cast<int>(params.integer("ranks")); }

// The communicator the runner made for this cell (its first `ranks` world ranks); checked against the
// method's rank count so that a plan built outside such a cell fails with a sentence, not a hang.
inline MPI_Comm cell_communicator(const std::string& method, int ranks) {
  const void* c = attnbench::mpi::cell_comm();
  if (!c) throw std::runtime_error(method + " runs only inside a distributed cell under mpirun (no cell communicator)");
  MPI_Comm comm = *static_cast<const MPI_Comm*>(c);
  int size = 0;
  MPI_Comm_size(comm, &size);
  if (size != ranks)
    throw std::runtime_error(method + " was planned for " + std::to_string(ranks) + " ranks but its communicator has " +
                             std::to_string(size));
  return comm;
}

// The refusals of all four methods: CPU backend and head layout (Method's own), fp32/bf16, full or causal.
inline Support distributed_supports(const Method& m, const std::string& method, const Problem& p, const Params& params,
                                    const Device& d) {
  if (Support s = m.Method::supports(p, params, d); !s) return s;
  if (p.dtype != Dtype::f32 && p.dtype != Dtype::bf16)
    return Support::no(method + " computes in fp32 from fp32 or bf16 inputs, not " + std::string(to_string(p.dtype)));
  if (!p.mask || (!p.mask->is_full() && !p.mask->is_causal()))
    return Support::no(method + " supports the full and causal masks only, not '" + (p.mask ? p.mask->name() : "") +
                       "'; run it on a full or causal problem");
  return Support::yes();
}

// Ring, striped and Ulysses split one sequence: self-attention with every rank holding a token.
// tree_decode's shape, on every backend: a few queries (more are a prefill) against at least one cached key
// per rank.
constexpr std::int64_t kTreeDecodeMaxQueries = 128;
inline Support tree_decode_shape_support(const Problem& p, int ranks) {
  if (p.q_len > kTreeDecodeMaxQueries)
    return Support::no("tree_decode is a decoding method for a few queries against a long KV cache: q_len " +
                       std::to_string(p.q_len) + " > " + std::to_string(kTreeDecodeMaxQueries) +
                       "; use ring, striped or ulysses for a prefill");
  if (p.kv_len < ranks)
    return Support::no("tree_decode needs at least one cached key per rank: kv_len " + std::to_string(p.kv_len) +
                       " < ranks " + std::to_string(ranks));
  return Support::yes();
}

inline Support self_attention_only(const std::string& method, const Problem& p, int ranks) {
  if (p.cross || p.q_len != p.kv_len)
    return Support::no(method + " splits one sequence over ranks and needs self-attention (q_len == kv_len); got " +
                       std::to_string(p.q_len) + " queries against " + std::to_string(p.kv_len) +
                       " keys: use tree_decode for a few queries against a long KV cache");
  if (p.q_len < ranks)
    return Support::no(method + " needs at least one token per rank: seq_len " + std::to_string(p.q_len) + " < ranks " +
                       std::to_string(ranks));
  return Support::yes();
}

// Contiguous split of n items over `parts`: part r holds [start(r), start(r + 1)), sizes differing by at
// most one (the first parts are the shorter ones when n is not divisible).
inline std::int64_t chunk_start(std::int64_t n, int parts, int r) { return n * r / parts; }
inline std::int64_t chunk_size(std::int64_t n, int parts, int r) {
  return chunk_start(n, parts, r + 1) - chunk_start(n, parts, r);
}
// Round-robin split: part r holds positions r, r + parts, r + 2·parts, …
inline std::int64_t striped_size(std::int64_t n, int parts, int r) { return (n - r + parts - 1) / parts; }

// Copies rows of a [batch, heads, len, dim] tensor of element size `esize` into a [batch, heads, rows, dim]
// shard: shard row i is tensor row first + i·stride.
inline void gather_rows(const void* src, std::int64_t batch_heads, std::int64_t len, std::int64_t dim,
                        std::size_t esize, std::int64_t first, std::int64_t stride, std::int64_t rows, void* dst) {
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * esize;
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  for (std::int64_t bh = 0; bh < batch_heads; ++bh)
    for (std::int64_t i = 0; i < rows; ++i)
      std::memcpy(d + static_cast<std::size_t>(bh * rows + i) * row_bytes,
                  s + static_cast<std::size_t>(bh * len + first + i * stride) * row_bytes, row_bytes);
}
// The inverse: shard rows back into their places in a [batch, heads, len, dim] tensor.
inline void scatter_rows(const void* src, std::int64_t batch_heads, std::int64_t len, std::int64_t dim,
                         std::size_t esize, std::int64_t first, std::int64_t stride, std::int64_t rows, void* dst) {
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * esize;
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  for (std::int64_t bh = 0; bh < batch_heads; ++bh)
    for (std::int64_t i = 0; i < rows; ++i)
      std::memcpy(d + static_cast<std::size_t>(bh * len + first + i * stride) * row_bytes,
                  s + static_cast<std::size_t>(bh * rows + i) * row_bytes, row_bytes);
}

// Bytes as a vector of char, for shards held in the input's element type.
using Bytes = std::vector<char>;

// Where one run's time went on this rank: inside MPI calls (communication, including waiting for a
// transfer that compute did not hide) or in the local kernels; and the bytes this rank handed to MPI
// for other ranks (point-to-point: the messages sent; all-to-all: the parts for other ranks; all-reduce:
// the buffer it contributes).
class RunClock {
 public:
  using clock = std::chrono::steady_clock;
  void reset() {
    comm_s_ = compute_s_ = 0;
    bytes_ = 0;
    pairs_ = 0;
  }
  template <class F>
  void comm(F&& f) {
    const auto t0 = clock::now();
    f();
    comm_s_ += std::chrono::duration<double>(clock::now() - t0).count();
  }
  template <class F>
  void compute(F&& f) {
    const auto t0 = clock::now();
    f();
    compute_s_ += std::chrono::duration<double>(clock::now() - t0).count();
  }
  void sent(double bytes) { bytes_ += bytes; }
  // Query-key pairs this rank scored (its share of the work, whatever the machine does to its timing).
  void scored(double pairs) { pairs_ += pairs; }
  double comm_s() const { return comm_s_; }
  double compute_s() const { return compute_s_; }
  double bytes() const { return bytes_; }
  double pairs() const { return pairs_; }

 private:
  double comm_s_ = 0, compute_s_ = 0, bytes_ = 0, pairs_ = 0;
};

// Pairs (i, j), 0 <= i < rows, 0 <= j < keys, with j <= i + diagonal; every pair when `masked` is false.
inline double visible_pairs(std::int64_t rows, std::int64_t keys, std::int64_t diagonal, bool masked) {
  if (!masked) return static_cast<double>(rows) * static_cast<double>(keys);
  double n = 0;
  for (std::int64_t i = 0; i < rows; ++i) n += static_cast<double>(std::clamp<std::int64_t>(i + diagonal + 1, 0, keys));
  return n;
}

// The counters of the last run, reduced over the cell's ranks (a collective: every rank calls it).
inline Counters reduce_counters(MPI_Comm comm, const RunClock& c) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  double mine[3] = {c.bytes(), c.comm_s(), c.compute_s()}, most[3] = {0, 0, 0};
  MPI_Allreduce(mine, most, 3, MPI_DOUBLE, MPI_MAX, comm);
  double sums[2] = {c.compute_s(), c.pairs()}, totals[2] = {0, 0}, pairs_max = 0;
  MPI_Allreduce(sums, totals, 2, MPI_DOUBLE, MPI_SUM, comm);
  double pairs = c.pairs();
  MPI_Allreduce(&pairs, &pairs_max, 1, MPI_DOUBLE, MPI_MAX, comm);
  const double busy_mean = totals[0] / size, pairs_mean = totals[1] / size;
  Counters out{{"ranks", static_cast<double>(size)},
               {"comm_bytes_per_rank", most[0]},
               {"comm_s", most[1]},
               {"compute_s", most[2]},
               {"busy_s_max", most[2]},
               {"busy_s_mean", busy_mean},
               {"imbalance", busy_mean > 0 ? most[2] / busy_mean : 1.0}};
  // The same ratio over work instead of time: deterministic, so it shows a schedule's balance apart
  // from what the machine did to the timing (oversubscribed ranks, noisy neighbours).
  if (pairs_mean > 0) out.emplace_back("work_imbalance", pairs_max / pairs_mean);
  return out;
}

// Gathers equal-or-unequal byte shards of every rank onto rank 0 (untimed: collect()).
inline std::vector<Bytes> gather_to_root(MPI_Comm comm, const Bytes& mine) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  long long n = static_cast<long long>(mine.size());
  std::vector<long long> sizes(static_cast<std::size_t>(size));
  MPI_Gather(&n, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, 0, comm);
  std::vector<Bytes> all;
  if (rank == 0) {
    all.resize(static_cast<std::size_t>(size));
    all[0] = mine;
    for (int r = 1; r < size; ++r) {
      all[static_cast<std::size_t>(r)].resize(static_cast<std::size_t>(sizes[static_cast<std::size_t>(r)]));
      // In pieces of at most 1 GiB: MPI counts are int.
      for (long long off = 0; off < sizes[static_cast<std::size_t>(r)]; off += 1LL << 30) {
        const int len = static_cast<int>(std::min<long long>(1LL << 30, sizes[static_cast<std::size_t>(r)] - off));
        MPI_Recv(all[static_cast<std::size_t>(r)].data() + off, len, MPI_BYTE, r, 7, comm, MPI_STATUS_IGNORE);
      }
    }
  } else {
    for (long long off = 0; off < n; off += 1LL << 30) {
      const int len = static_cast<int>(std::min<long long>(1LL << 30, n - off));
      MPI_Send(mine.data() + off, len, MPI_BYTE, 0, 7, comm);
    }
  }
  return all;
}

// Fills a byte shard of fp32 or bf16 elements with NaN (poison()).
inline void fill_nan(Bytes& b, Dtype dtype) {
  if (dtype == Dtype::bf16) {
    const std::uint16_t nan = 0x7fc0;
    for (std::size_t i = 0; i + 1 < b.size(); i += 2) std::memcpy(b.data() + i, &nan, 2);
  } else {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (std::size_t i = 0; i + 3 < b.size(); i += 4) std::memcpy(b.data() + i, &nan, 4);
  }
}

}  // namespace attnbench::kernels::distributed
