// Ulysses' data layout, shared by the MPI and NCCL versions: which kv heads a rank needs, and how a rank
// packs its sequence shard of Q, K and V by destination rank for the first all-to-all.
#pragma once
#include <cstddef>
#include <cstdint>

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

}  // namespace attnbench::kernels::distributed
