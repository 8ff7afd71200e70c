// What one attention call computes: shapes, head layout, dtype, scale and mask.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "attnbench/dtype.hpp"
#include "attnbench/mask.hpp"
#include "attnbench/tensor.hpp"

namespace attnbench {

// Layouts: Q [batch, heads, q_len, head_dim], K [batch, kv_heads, kv_len, head_dim],
// V [batch, kv_heads, kv_len, value_dim], O [batch, heads, q_len, value_dim].
// heads == kv_heads is MHA, kv_heads == 1 MQA, anything between GQA; query head h reads kv head
// h / (heads / kv_heads).
struct Problem {
  std::int64_t batch = 1;
  std::int64_t heads = 1;
  std::int64_t kv_heads = 1;
  std::int64_t q_len = 0;
  std::int64_t kv_len = 0;
  std::int64_t head_dim = 64;
  std::int64_t value_dim = 64;
  double scale = 0.125;  // softmax scale, 1/sqrt(head_dim) unless a task says otherwise
  Dtype dtype = Dtype::f32;
  bool cross = false;                // keys come from another sequence than the queries
  std::shared_ptr<const Mask> mask;  // never null once a task has built the problem

  bool causal() const { return mask && mask->is_causal(); }
  std::int64_t group_size() const { return heads / kv_heads; }
  std::int64_t kv_head_of(std::int64_t h) const { return h / group_size(); }
  // "B1 H8/8 L512x512 D64 fp32 causal"
  std::string describe() const;
  MaskShape mask_shape() const { return {batch, heads, q_len, kv_len}; }
};

struct Inputs {
  Tensor q, k, v;
};

Tensor make_output(const Problem& p, Dtype dtype);

// FlashAttention's forward FLOP count: 4·B·H·Lq·Lk·D (two GEMMs), halved for causal as its scripts do;
// any other mask scales it by the mask's exact density. Value dim enters as (D + Dv) / 2 per GEMM pair.
double attention_flops(const Problem& p);
// Minimum bytes moved: Q, K, V read once, O written once, at the problem's dtype.
double attention_bytes(const Problem& p);

}  // namespace attnbench
