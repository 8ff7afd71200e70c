// Ulysses' data layout, shared by the MPI and NCCL versions: which kv heads a rank needs, the sizes of
// the all-to-all parts, how a rank packs its sequence shard of Q, K and V by destination rank for the
// first all-to-all, and how rank 0 unpacks the gathered outputs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "attnbench/method.hpp"
#include "attnbench/problem.hpp"
#include "kernels/distributed/cp_common.hpp"  // chunk_start, chunk_size, gather_rows

namespace attnbench::kernels::distributed {

// The kv heads rank d needs for its query heads [d·H/P, (d+1)·H/P): a contiguous range.
struct KvRange {
  std::int64_t first, count;
};
inline KvRange kv_range(const Problem& p, int ranks, int d) {
  const std::int64_t hp = p.heads / ranks;
  const std::int64_t lo = p.kv_head_of(d * hp), hi = p.kv_head_of((d + 1) * hp - 1);
  return {lo, hi - lo + 1};
}

// Whether Ulysses can shard p's heads over P ranks: query heads divisible by P, and kv heads either
// sharded (divisible by P) or replicated (P divisible by them).
inline Support ulysses_heads_support(const Problem& p, int P) {
  if (p.heads % P != 0)
    return Support::no(
        "ulysses shards heads over ranks and needs heads divisible by ranks: " + std::to_string(p.heads) +
        " heads over " + std::to_string(P) + " ranks; use ring or striped, or a rank count dividing the heads");
  if (p.kv_heads % P != 0 && P % p.kv_heads != 0)
    return Support::no(
        "ulysses needs kv_heads divisible by ranks (kv heads sharded) or ranks divisible by kv_heads "
        "(kv heads replicated); got " +
        std::to_string(p.kv_heads) + " kv heads over " + std::to_string(P) + " ranks");
  return Support::yes();
}

// Bytes of the part rank d receives in the first all-to-all from a rank holding n positions: Q of d's
// query heads plus K and V of the kv heads d needs.
inline std::size_t input_part_bytes(const Problem& p, int ranks, std::size_t esize, int d, std::int64_t n) {
  const KvRange kv = kv_range(p, ranks, d);
  return static_cast<std::size_t>(p.batch * n *
                                  (p.heads / ranks * p.head_dim + kv.count * (p.head_dim + p.value_dim))) *
         esize;
}
// Bytes of one head group's output for n positions, [batch][heads/ranks][n][value_dim].
inline std::size_t output_part_bytes(const Problem& p, int ranks, std::size_t esize, std::int64_t n) {
  return static_cast<std::size_t>(p.batch * (p.heads / ranks) * n * p.value_dim) * esize;
}

// Writes, at base + displs[d] for every destination d, this rank's rows of d's query heads, then of d's
// kv heads' keys, then values, each [batch][heads][rows][dim] in the input dtype (element size esize).
template <class Displs>
void pack_sequence_shard(const Problem& p, const Inputs& in, int rank, int ranks, std::size_t esize,
                         const Displs& displs, char* base) {
  const std::int64_t hp = p.heads / ranks;
  const std::int64_t n = chunk_size(p.q_len, ranks, rank), first = chunk_start(p.q_len, ranks, rank);
  const auto bytes = [esize](std::int64_t elements) { return static_cast<std::size_t>(elements) * esize; };
  for (int d = 0; d < ranks; ++d) {
    char* dst = base + displs[static_cast<std::size_t>(d)];
    const KvRange kv = kv_range(p, ranks, d);
    for (std::int64_t b = 0; b < p.batch; ++b)
      gather_rows(static_cast<const char*>(in.q.data()) + bytes((b * p.heads + d * hp) * p.q_len * p.head_dim), hp,
                  p.q_len, p.head_dim, esize, first, 1, n, dst + b * bytes(hp * n * p.head_dim));
    dst += bytes(p.batch * hp * n * p.head_dim);
    for (std::int64_t b = 0; b < p.batch; ++b)
      gather_rows(static_cast<const char*>(in.k.data()) + bytes((b * p.kv_heads + kv.first) * p.kv_len * p.head_dim),
                  kv.count, p.kv_len, p.head_dim, esize, first, 1, n, dst + b * bytes(kv.count * n * p.head_dim));
    dst += bytes(p.batch * kv.count * n * p.head_dim);
    for (std::int64_t b = 0; b < p.batch; ++b)
      gather_rows(static_cast<const char*>(in.v.data()) + bytes((b * p.kv_heads + kv.first) * p.kv_len * p.value_dim),
                  kv.count, p.kv_len, p.value_dim, esize, first, 1, n, dst + b * bytes(kv.count * n * p.value_dim));
  }
}

// Rank 0: the gathered output shards (rank r's: its positions of every rank's heads, by head group) into
// the whole output [batch][heads][q_len][value_dim].
inline void unpack_outputs(const Problem& p, int ranks, std::size_t esize, const std::vector<Bytes>& shards,
                           void* out) {
  const std::int64_t hp = p.heads / ranks;
  for (int r = 0; r < ranks; ++r) {
    const std::int64_t n = chunk_size(p.q_len, ranks, r), first = chunk_start(p.q_len, ranks, r);
    const std::size_t part = output_part_bytes(p, ranks, esize, n);
    for (int d = 0; d < ranks; ++d)
      for (std::int64_t b = 0; b < p.batch; ++b)
        scatter_rows(
            shards[static_cast<std::size_t>(r)].data() + d * part +
                static_cast<std::size_t>(b * hp * n * p.value_dim) * esize,
            hp, p.q_len, p.value_dim, esize, first, 1, n,
            static_cast<char*>(out) + static_cast<std::size_t>((b * p.heads + d * hp) * p.q_len * p.value_dim) * esize);
  }
}

}  // namespace attnbench::kernels::distributed
