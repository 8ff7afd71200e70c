// The schedule `ring` and `striped` follow, on CPU ranks (MPI) and on GPUs (NCCL) alike: which rows a
// rank holds, which blocks it computes with which causal diagonal, and which blocks travel on.
#pragma once
#include <cstdint>
#include <limits>

#include "kernels/distributed/block_attention.hpp"  // kNoMask
#include "kernels/distributed/cp_common.hpp"        // chunk_start, chunk_size, striped_size

namespace attnbench::kernels::distributed {

enum class Layout { contiguous, striped };

struct RingSchedule {
  std::int64_t q_len = 0;
  int rank = 0, size = 1;
  Layout layout = Layout::contiguous;
  bool causal = false;

  static constexpr std::int64_t kSkip = std::numeric_limits<std::int64_t>::min();

  // Rows of rank r: a contiguous chunk (ring) or every size-th row from r (striped).
  std::int64_t rows_of(int r) const {
    return layout == Layout::contiguous ? chunk_size(q_len, size, r) : striped_size(q_len, size, r);
  }
  std::int64_t first(int r) const { return layout == Layout::contiguous ? chunk_start(q_len, size, r) : r; }
  std::int64_t stride() const { return layout == Layout::contiguous ? 1 : size; }
  // Key j of rank src's block is visible to query i of this rank when j <= i + diagonal; kSkip: never.
  std::int64_t diagonal(int src) const {
    if (!causal) return kNoMask;
    if (layout == Layout::striped) return src <= rank ? 0 : -1;  // positions src + P·j <= rank + P·i
    if (src > rank) return kSkip;                                // a later chunk: entirely in the future
    return chunk_start(q_len, size, rank) - chunk_start(q_len, size, src);
  }
  // At step t this rank holds block (rank − t) and may pass it to rank + 1; under a causal ring only a
  // block of an earlier rank that rank + 1 still needs travels on.
  bool needs_forward(int t) const {
    return !(causal && layout == Layout::contiguous) || (t <= rank && rank + 1 < size);
  }
  bool needs_receive(int t) const { return !(causal && layout == Layout::contiguous) || t + 1 <= rank; }
};

}  // namespace attnbench::kernels::distributed
