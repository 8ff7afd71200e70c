// The argument block of the CUDA context-parallel methods' block attention and its limits, free of CUDA
// headers: kernels/distributed/cp_cuda_common.cuh declares the launchers with it, and the CPU warp
// emulator's test (tests/kernels/cuda_emulated/) runs the kernels of block_attention_kernel.cuh with it.
#pragma once
#include <cstdint>
#include <limits>

#include "attnbench/problem.hpp"

namespace attnbench::kernels::distributed::gpu {

// As in block_attention.hpp: a block whose diagonal is kNoMask is wholly visible; otherwise key j of the
// block is visible to query i of the shard when j <= i + diagonal.
constexpr std::int64_t kNoMask = std::numeric_limits<std::int64_t>::max() / 4;
constexpr std::int64_t kMaxDim = 256;  // head_dim and value_dim: eight values per lane of a warp

// One rank's queries Q [batch, heads, q_rows, head_dim] against one block of keys K [batch, kv_heads,
// kv_rows, head_dim] and values V [batch, kv_heads, kv_rows, value_dim] (elements of the problem's dtype),
// folded into `state` (rows in [batch][heads][q_rows] order); query head h reads kv head h / (heads /
// kv_heads). Arithmetic in fp32.
struct BlockArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  long long batch = 1, heads = 1, kv_heads = 1, q_rows = 0, kv_rows = 0, head_dim = 0, value_dim = 0;
  float scale = 1.0f;  // softmax scale (the kernel works in log2 units: scale · log2 e)
  long long diagonal = kNoMask;
};

// The arguments of `p`'s batch, heads, kv heads, head and value dims and scale, for q_rows queries at q
// against kv_rows keys at k and values at v; a caller that splits the heads (Ulysses) sets heads and
// kv_heads after.
inline BlockArgs block_args_for(const Problem& p, const void* q, const void* k, const void* v, long long q_rows,
                                long long kv_rows, long long diagonal) {
  BlockArgs a;
  a.q = q;
  a.k = k;
  a.v = v;
  a.batch = p.batch;
  a.heads = p.heads;
  a.kv_heads = p.kv_heads;
  a.q_rows = q_rows;
  a.kv_rows = kv_rows;
  a.head_dim = p.head_dim;
  a.value_dim = p.value_dim;
  a.scale = static_cast<float>(p.scale);
  a.diagonal = diagonal;
  return a;
}

}  // namespace attnbench::kernels::distributed::gpu
