// The local compute of the context-parallel methods: one rank's queries attend to one block of keys and
// fold the result into a running online-softmax state (row max, row sum, unnormalised output), so that
// blocks arriving from other ranks merge exactly by the log-sum-exp rule (Milakov & Gimelshein 2018).
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

#include "attnbench/dtype.hpp"
#include "kernels/cpu/flash_core.hpp"

namespace attnbench::kernels::distributed {

// A block's keys are all visible when its diagonal is kNoMask; otherwise key j of the block is visible to
// query i of the shard when j <= i + diagonal (a causal mask between two runs of positions).
constexpr std::int64_t kNoMask = std::numeric_limits<std::int64_t>::max() / 4;

// The shape of one rank's queries against one block of keys: Q [batch, heads, q_rows, head_dim],
// K [batch, kv_heads, kv_rows, head_dim], V [batch, kv_heads, kv_rows, value_dim], query head h reading
// kv head h / (heads / kv_heads).
struct BlockShape {
  std::int64_t batch = 1, heads = 1, kv_heads = 1, q_rows = 0, head_dim = 64, value_dim = 64;
  double scale = 0.125;
  std::int64_t rows() const { return batch * heads * q_rows; }
};

// The online-softmax state of every query row of a shard: row max (in log2 units of the scaled score),
// row sum of 2^(s - max), and the unnormalised output Σ 2^(s - max)·v, rows in [batch][heads][q_rows].
struct SoftmaxState {
  std::int64_t rows = 0, value_dim = 0;
  std::vector<float> max, sum, acc;  // [rows], [rows], [rows][value_dim]
  SoftmaxState() = default;
  SoftmaxState(std::int64_t rows, std::int64_t value_dim);
  void reset();  // max -inf, sum 0, acc 0: no key seen yet
};

// Per-thread tiles for accumulate(), sized once (no allocation in the timed path).
class BlockAttention {
 public:
  BlockAttention() = default;
  BlockAttention(const BlockShape& s, Dtype dtype, std::int64_t max_kv_rows, int threads, std::int64_t block_q = 64,
                 std::int64_t block_k = 128);

  // Folds kv_rows keys/values into `state`. q, k, v hold elements of the dtype given at construction
  // (fp32 or bf16 bits); arithmetic is fp32. Tiles the diagonal empties are skipped.
  void accumulate(const void* q, const void* k, const void* v, std::int64_t kv_rows, std::int64_t diagonal,
                  SoftmaxState& state);

  // Decoding form of accumulate() for a few queries against many keys: every query head of a kv group
  // and every query are rows of one work item, scores by dot products along head_dim.
  void accumulate_decode(const void* q, const void* k, const void* v, std::int64_t kv_rows, std::int64_t diagonal,
                         SoftmaxState& state);

  const BlockShape& shape() const { return shape_; }

 private:
  BlockShape shape_;
  Dtype dtype_ = Dtype::f32;
  std::int64_t block_q_ = 64, block_k_ = 128;
  int threads_ = 1;
  std::int64_t per_thread_ = 0;
  std::int64_t cols_ = 0, vdim_ = 0;  // block_q and value_dim rounded up to the vector width
  AlignedFloats buffer_;
};

// out[row][c] = acc[row][c] / sum[row] (0 for a row no key was visible to), narrowed to `dtype`.
void normalise(const SoftmaxState& state, Dtype dtype, void* out);

// Rescales `state` to the common max `global_max` (one per row): sum and acc multiplied by
// 2^(max - global_max), max set to global_max. Rows whose global max is -inf are left at zero.
void rescale_to(SoftmaxState& state, const float* global_max);

}  // namespace attnbench::kernels::distributed
