// Input generators: tensors filled deterministically from a seed (docs/datasets.md defines each).
#pragma once
#include <cstdint>
#include <string>

#include "attnbench/problem.hpp"
#include "attnbench/tensor.hpp"

namespace attnbench::datasets {

// I.i.d. N(0, sigma²) entries, rounded to the tensor's dtype. The same (seed) gives the same values on
// every machine and for every thread count.
void fill_gaussian(Tensor& t, std::uint64_t seed, double sigma = 1.0);

// Q, K, V for a problem, each N(0, 1), from child seeds "q", "k", "v" of `seed`.
Inputs gaussian_inputs(const Problem& p, std::uint64_t seed);

}  // namespace attnbench::datasets

namespace attnbench::datasets {

// The `structured` generator's knobs (docs/datasets.md gives the exact definition and why each exists).
struct StructuredSpec {
  double drift = 0.95;         // AR(1) coefficient between neighbouring tokens (0: i.i.d., near 1: slow drift)
  double sink_scale = 8.0;     // norm of the sink key (position 0) relative to the other keys
  std::int64_t outliers = 2;   // channels of Q and K scaled by outlier_scale (chosen per kv head, seeded)
  double outlier_scale = 6.0;  // magnitude factor of the outlier channels
  double rope_base = 10000.0;  // RoPE base θ; 0 turns the rotation off
};

// Rotary position embedding in place, on the rotate-half layout (channel i pairs with i + D/2, as in
// Hugging Face Llama): angle = (position_offset + t) · base^(−2i/D). An odd last channel is left as is.
void apply_rope(Tensor& t, double base, std::int64_t position_offset);

// Q, K, V that look like a real model's: drifting keys with a heavy sink token, outlier channels, RoPE.
// Deterministic in (problem shape, spec, seed); independent of the thread count.
Inputs structured_inputs(const Problem& p, std::uint64_t seed, const StructuredSpec& spec = {});

// What a capture file holds (datasets "q", "k", "v" of [B, H, L, D]); read without loading the tensors.
struct Hdf5Layout {
  std::int64_t batch = 0, heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, head_dim = 0, value_dim = 0;
  std::string model;          // root attribute "model" ("" when absent)
  bool rope_applied = false;  // root attribute "rope_applied" (Q and K captured after RoPE)
};
// Throws std::runtime_error naming the file and what is wrong with it.
Hdf5Layout read_hdf5_layout(const std::string& path);

// Q, K, V for `p` cut from a capture file: the first p.batch sequences, the first p.heads query heads
// and p.kv_heads kv heads, keys [0, kv_len) and the q_len queries that end at kv_len (bottom-right,
// as the mask aligns them). Converted to p.dtype. Throws, naming the file, when the file cannot serve p.
Inputs hdf5_inputs(const Problem& p, const std::string& path);

}  // namespace attnbench::datasets
