// Kernelized (linear) attention on the CPU, shared by the methods that differ only in their feature map
// φ (linear: elu+1, performer: FAVOR+, cosformer: ReLU with cos re-weighting):
//   out_i = φ(q_i)ᵀ S_i / φ(q_i)ᵀ z_i,  S_i = Σ_j φ(k_j) v_jᵀ,  z_i = Σ_j φ(k_j),
// summed over every key (mask "full") or over the keys up to the query's position (mask "causal", running
// prefix sums, bottom-right aligned: query i sits at absolute position i + kv_len − q_len). Also the row
// access and support checks the other linear-family methods (lightning, nystrom) reuse.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "attnbench/method.hpp"
#include "kernels/cpu/flash_core.hpp"  // AlignedFloats

namespace attnbench::kernels {

// Row `n` elements at flat index `at` of `t`, widened to fp32 (fp32 rows are copied, bf16 converted).
inline void load_row(const Tensor& t, std::int64_t at, std::int64_t n, float* dst) {
  switch (t.dtype()) {
    case Dtype::f32:
      std::memcpy(dst, t.f32() + at, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case Dtype::bf16: {
      const std::uint16_t* src = t.bf16() + at;
      for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(src[i]);
      return;
    }
    case Dtype::f64: {
      const double* src = t.f64() + at;
      for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
      return;
    }
    case Dtype::f16: {
      const std::uint16_t* src = t.f16() + at;
      for (std::int64_t i = 0; i < n; ++i) dst[i] = fp16_to_float(src[i]);
      return;
    }
  }
}

// Writes `n` fp32 values at flat index `at` of `t`, rounded to its dtype.
inline void store_row(Tensor& t, std::int64_t at, std::int64_t n, const float* src) {
  switch (t.dtype()) {
    case Dtype::f32:
      std::memcpy(t.f32() + at, src, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case Dtype::bf16: {
      std::uint16_t* dst = t.bf16() + at;
      for (std::int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i]);
      return;
    }
    case Dtype::f64: {
      double* dst = t.f64() + at;
      for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i];
      return;
    }
    case Dtype::f16: {
      std::uint16_t* dst = t.f16() + at;
      for (std::int64_t i = 0; i < n; ++i) dst[i] = float_to_fp16(src[i]);
      return;
    }
  }
}

// The checks every linear-family method shares after Method::supports: fp32/bf16 inputs, and a mask that
// is "full" or (when the method has a causal form) "causal" — kernelized attention factorises the whole
// score matrix or its causal prefix, and has no way to express any other pattern.
inline Support linear_family_supports(const std::string& method, const Problem& p, bool has_causal_form) {
  if (p.dtype != Dtype::f32 && p.dtype != Dtype::bf16)
    return Support::no(method + " computes in fp32 from fp32 or bf16 inputs, not " + std::string(to_string(p.dtype)));
  if (!p.mask) return Support::no(method + " needs a problem with a mask (full or causal)");
  if (!p.mask->is_full() && !p.mask->is_causal())
    return Support::no(method + " is kernelized (linear) attention and has no notion of a '" + p.mask->name() +
                       "' mask: it factorises all keys or a causal prefix; use mask full" +
                       (has_causal_form ? " or causal" : "") + ", or an exact method such as flash");
  return Support::yes();
}

// FLOPs of linear_attention_forward: every key adds φ(k)·vᵀ and φ(k) to its kv head's state
// (2·F·(Dv+1)), every query reads it (2·F·(Dv+1)) plus a division per value; the same with a causal
// mask, where the prefix sums cost what the full sums do. The feature maps add their own cost per row.
inline double linear_attention_flops(const Problem& p, std::int64_t features, double query_feature_flops,
                                     double key_feature_flops) {
  const double F = static_cast<double>(features), Dv = static_cast<double>(p.value_dim);
  const double keys = static_cast<double>(p.batch * p.kv_heads * p.kv_len);
  const double queries = static_cast<double>(p.batch * p.heads * p.q_len);
  return keys * (2.0 * F * (Dv + 1.0) + key_feature_flops) +
         queries * (2.0 * F * (Dv + 1.0) + Dv + query_feature_flops);
}

// Buffers sized once for a problem: one state (S, z) per (batch, kv head) and per-thread rows, so that
// the forward pass allocates nothing. O(B·Hkv·F·Dv + threads·(F + D + Dv)) floats.
class LinearWorkspace {
 public:
  LinearWorkspace() = default;
  LinearWorkspace(const Problem& p, std::int64_t features, int threads)
      : features_(features),
        threads_(threads),
        state_size_(features * p.value_dim + features),
        row_size_(std::max(p.head_dim, p.value_dim)),
        per_thread_(features + 2 * row_size_ + p.value_dim),
        states_(static_cast<std::size_t>(p.batch * p.kv_heads * state_size_)),
        rows_(static_cast<std::size_t>(threads * per_thread_)) {}

  std::int64_t features() const { return features_; }
  int threads() const { return threads_; }
  // [F][Dv] then [F]: the state of (batch b, kv head g) is state(b·kv_heads + g).
  float* state(std::int64_t item) { return states_.data() + item * state_size_; }
  float* phi(int t) { return rows_.data() + t * per_thread_; }
  float* x(int t) { return phi(t) + features_; }
  float* v(int t) { return x(t) + row_size_; }
  float* num(int t) { return v(t) + row_size_; }

 private:
  std::int64_t features_ = 0;
  int threads_ = 0;
  std::int64_t state_size_ = 0, row_size_ = 0, per_thread_ = 0;
  AlignedFloats states_, rows_;
};

// A feature map FM for linear_attention_forward provides
//   std::int64_t features() const;                                   // F, the length of φ(x)
//   void query(const float* q, std::int64_t pos, float* phi) const;  // φ(q) up to a positive factor of the row
//   float key(const float* k, std::int64_t pos, float* phi) const;   // returns c: φ(k) = phi · exp(c)
// where `pos` is the row's absolute position. A query's own positive factor cancels between numerator and
// denominator, so it may be dropped (or chosen for stability); a key's factor exp(c) may differ per key and
// is reconciled here against a running maximum, as an online softmax does, so that it never overflows.
namespace detail {

// Adds key j of one (batch, kv head) to its state; `shift` is the log of the factor the state is kept in.
template <class FM>
inline void add_key(const FM& fm, const Problem& p, const Inputs& in, std::int64_t kv_row, std::int64_t j, float* S,
                    float* z, float& shift, bool first, float* phi, float* x, float* v) {
  const std::int64_t F = fm.features(), D = p.head_dim, Dv = p.value_dim;
  load_row(in.k, (kv_row + j) * D, D, x);
  load_row(in.v, (kv_row + j) * Dv, Dv, v);
  const float c = fm.key(x, j, phi);
  if (first) {
    shift = c;
  } else if (c > shift) {  // rescale what is summed so far to the new, larger factor
    const float down = std::exp(shift - c);
    for (std::int64_t i = 0; i < F * Dv; ++i) S[i] *= down;
    for (std::int64_t f = 0; f < F; ++f) z[f] *= down;
    shift = c;
  } else if (c < shift) {
    const float down = std::exp(c - shift);
    for (std::int64_t f = 0; f < F; ++f) phi[f] *= down;
  }
  for (std::int64_t f = 0; f < F; ++f) {
    const float w = phi[f];
    if (w == 0.0f) continue;  // ReLU-type features are often zero: skip their row of the state
    float* __restrict s = S + f * Dv;
    for (std::int64_t c2 = 0; c2 < Dv; ++c2) s[c2] += w * v[c2];
    z[f] += w;
  }
}

// out[b, h, i, :] = φ(q_i)ᵀ S / φ(q_i)ᵀ z; zeros when the denominator is 0 (no key, or none with a
// positive similarity).
template <class FM>
inline void emit_query(const FM& fm, const Problem& p, const Inputs& in, Tensor& out, std::int64_t q_row,
                       std::int64_t i, const float* S, const float* z, float* phi, float* x, float* num) {
  const std::int64_t F = fm.features(), D = p.head_dim, Dv = p.value_dim;
  load_row(in.q, (q_row + i) * D, D, x);
  fm.query(x, i + p.kv_len - p.q_len, phi);
  std::fill(num, num + Dv, 0.0f);
  float den = 0.0f;
  for (std::int64_t f = 0; f < F; ++f) {
    const float w = phi[f];
    if (w == 0.0f) continue;
    const float* __restrict s = S + f * Dv;
    for (std::int64_t c = 0; c < Dv; ++c) num[c] += w * s[c];
    den += w * z[f];
  }
  if (den == 0.0f) {
    std::fill(num, num + Dv, 0.0f);
  } else {
    const float inv = 1.0f / den;
    for (std::int64_t c = 0; c < Dv; ++c) num[c] *= inv;
  }
  store_row(out, (q_row + i) * Dv, Dv, num);
}

}  // namespace detail

// The forward pass. Work is split over (batch, kv head): the heads of a GQA group share their kv head's
// state, so it is built once per group. Non-causal: the states are built in parallel, then queries are
// read out in parallel over (batch, head, query tile). Causal: one ordered scan per (batch, kv head), the
// state growing by each key as the queries reach its position.
template <class FM>
void linear_attention_forward(const Problem& p, const Inputs& in, Tensor& out, const FM& fm, LinearWorkspace& ws) {
  const std::int64_t B = p.batch, H = p.heads, Hkv = p.kv_heads, G = p.group_size();
  const std::int64_t Lq = p.q_len, Lk = p.kv_len, F = fm.features(), Dv = p.value_dim;
  const std::int64_t offset = Lk - Lq;

  if (!p.causal()) {
#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(ws.threads())
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t g = 0; g < Hkv; ++g) {
        const int t = omp_get_thread_num();
        float* S = ws.state(b * Hkv + g);
        std::fill(S, S + F * Dv + F, 0.0f);
        float shift = 0.0f;
        for (std::int64_t j = 0; j < Lk; ++j)
          detail::add_key(fm, p, in, (b * Hkv + g) * Lk, j, S, S + F * Dv, shift, j == 0, ws.phi(t), ws.x(t), ws.v(t));
      }

    constexpr std::int64_t kQueryTile = 64;  // enough rows per work item to amortise scheduling
    const std::int64_t tiles = (Lq + kQueryTile - 1) / kQueryTile;
#pragma omp parallel for collapse(3) schedule(dynamic, 1) num_threads(ws.threads())
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t tile = 0; tile < tiles; ++tile) {
          const int t = omp_get_thread_num();
          const float* S = ws.state(b * Hkv + h / G);
          const std::int64_t end = std::min(Lq, (tile + 1) * kQueryTile);
          for (std::int64_t i = tile * kQueryTile; i < end; ++i)
            detail::emit_query(fm, p, in, out, (b * H + h) * Lq, i, S, S + F * Dv, ws.phi(t), ws.x(t), ws.num(t));
        }
    return;
  }

#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(ws.threads())
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t g = 0; g < Hkv; ++g) {
      const int t = omp_get_thread_num();
      float* S = ws.state(b * Hkv + g);
      float* z = S + F * Dv;
      std::fill(S, S + F * Dv + F, 0.0f);
      float shift = 0.0f;
      std::int64_t next_key = 0;
      for (std::int64_t i = 0; i < Lq; ++i) {
        const std::int64_t last = std::min(i + offset, Lk - 1);  // query i sees keys 0..i+offset
        for (; next_key <= last; ++next_key)
          detail::add_key(fm, p, in, (b * Hkv + g) * Lk, next_key, S, z, shift, next_key == 0, ws.phi(t), ws.x(t),
                          ws.v(t));
        for (std::int64_t h = g * G; h < (g + 1) * G; ++h) {
          if (next_key == 0) {  // a query before the first key sees nothing: a zero row
            std::fill(ws.num(t), ws.num(t) + Dv, 0.0f);
            store_row(out, ((b * H + h) * Lq + i) * Dv, Dv, ws.num(t));
          } else {
            detail::emit_query(fm, p, in, out, (b * H + h) * Lq, i, S, z, ws.phi(t), ws.x(t), ws.num(t));
          }
        }
      }
    }
}

}  // namespace attnbench::kernels
