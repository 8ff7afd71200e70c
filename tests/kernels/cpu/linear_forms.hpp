// Test helpers for the linear-family methods: their definitions as plain float64 quadratic forms, a mask
// they must refuse, and input conversions.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "attnbench/mask.hpp"
#include "attnbench/problem.hpp"
#include "attnbench/tensor.hpp"

namespace attnbench::testing {

// Row `row` (flat row index into a [.., len, n] tensor) as float64.
inline std::vector<double> row_of(const Tensor& t, std::int64_t row, std::int64_t n) {
  std::vector<double> r(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) r[i] = t.get(row * n + i);
  return r;
}

// sim(q, k, tq, tk): the method's similarity of query row q at absolute position tq and key row k at tk.
using Similarity =
    std::function<double(const std::vector<double>&, const std::vector<double>&, std::int64_t, std::int64_t)>;

// out[b, h, i] = Σ_j sim(q_i, k_j) v_j over the keys query i sees (all; or tk <= tq under a causal mask,
// with tq = i + kv_len − q_len), divided by Σ_j sim(q_i, k_j) when `normalise`; a row is zero when it
// sees no key or its denominator is 0. The O(L²) form every linear method must equal.
inline Tensor quadratic_form(const Problem& p, const Inputs& in, const Similarity& sim, bool normalise) {
  Tensor out(Dtype::f64, {p.batch, p.heads, p.q_len, p.value_dim});
  const std::int64_t offset = p.kv_len - p.q_len;
  for (std::int64_t b = 0; b < p.batch; ++b)
    for (std::int64_t h = 0; h < p.heads; ++h) {
      const std::int64_t kv_row0 = (b * p.kv_heads + p.kv_head_of(h)) * p.kv_len;
      for (std::int64_t i = 0; i < p.q_len; ++i) {
        const std::int64_t q_row = (b * p.heads + h) * p.q_len + i;
        const std::vector<double> q = row_of(in.q, q_row, p.head_dim);
        std::vector<double> num(static_cast<std::size_t>(p.value_dim), 0.0);
        double den = 0.0;
        for (std::int64_t j = 0; j < p.kv_len; ++j) {
          if (p.causal() && j > i + offset) break;
          const double s = sim(q, row_of(in.k, kv_row0 + j, p.head_dim), i + offset, j);
          den += s;
          for (std::int64_t c = 0; c < p.value_dim; ++c) num[c] += s * in.v.get((kv_row0 + j) * p.value_dim + c);
        }
        for (std::int64_t c = 0; c < p.value_dim; ++c)
          out.set(q_row * p.value_dim + c, !normalise ? num[c] : den == 0.0 ? 0.0 : num[c] / den);
      }
    }
  return out;
}

// A mask that is neither full nor causal: every linear method must refuse it.
class BandMask final : public Mask {
 public:
  explicit BandMask(MaskShape s) : Mask("band", Params{}, s) {}
  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t at = q + shape().offset();
    return k <= at && k > at - 4;
  }
};

// The same values in an fp32 tensor (for comparing a bf16 run with an fp32 run on identical inputs).
inline Tensor to_f32(const Tensor& t) {
  Tensor r(Dtype::f32, t.shape());
  for (std::int64_t i = 0; i < t.numel(); ++i) r.set(i, t.get(i));
  return r;
}

inline void scale_tensor(Tensor& t, double factor) {
  for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, t.get(i) * factor);
}

}  // namespace attnbench::testing
