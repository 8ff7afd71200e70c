// Problem description, output allocation, and the FLOP and byte formulas every report uses.
#include "attnbench/problem.hpp"

namespace attnbench {

std::string Problem::describe() const {
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "literal" + std::to_string(...).
  std::string s;
  s += 'B';
  s += std::to_string(batch);
  s += " H";
  s += std::to_string(heads);
  s += '/';
  s += std::to_string(kv_heads);
  s += " L";
  s += std::to_string(q_len);
  if (kv_len != q_len || cross) {
    s += 'x';
    s += std::to_string(kv_len);
  }
  s += " D";
  s += std::to_string(head_dim);
  if (value_dim != head_dim) {
    s += '/';
    s += std::to_string(value_dim);
  }
  s += ' ';
  s += to_string(dtype);
  if (mask && !mask->is_full()) {
    s += ' ';
    s += mask->name();
  }
  return s;
}

Tensor make_output(const Problem& p, Dtype dtype) { return Tensor(dtype, {p.batch, p.heads, p.q_len, p.value_dim}); }

double attention_flops(const Problem& p) {
  const double full = 2.0 * static_cast<double>(p.batch * p.heads) * static_cast<double>(p.q_len) *
                      static_cast<double>(p.kv_len) * static_cast<double>(p.head_dim + p.value_dim);
  if (!p.mask || p.mask->is_full()) return full;
  if (p.mask->is_causal()) return full / 2;
  return full * p.mask->density();
}

double attention_bytes(const Problem& p) {
  const double e = static_cast<double>(dtype_size(p.dtype));
  const double q = static_cast<double>(p.batch * p.heads * p.q_len * p.head_dim);
  const double k = static_cast<double>(p.batch * p.kv_heads * p.kv_len * p.head_dim);
  const double v = static_cast<double>(p.batch * p.kv_heads * p.kv_len * p.value_dim);
  const double o = static_cast<double>(p.batch * p.heads * p.q_len * p.value_dim);
  return e * (q + k + v + o);
}

}  // namespace attnbench
