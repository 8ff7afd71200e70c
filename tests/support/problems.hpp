// Test helpers: build a Problem from its numbers, run a registered method on it, compare outputs.
#pragma once
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "attnbench/method.hpp"
#include "attnbench/problem.hpp"
#include "datasets/generators.hpp"

namespace attnbench::testing {

struct Shape {
  std::int64_t batch = 1, heads = 1, kv_heads = 1, q_len = 16, kv_len = 16, head_dim = 64, value_dim = 64;
};

inline Problem make_problem(const Shape& s, const std::string& mask, Dtype dtype = Dtype::f32) {
  Problem p;
  p.batch = s.batch;
  p.heads = s.heads;
  p.kv_heads = s.kv_heads;
  p.q_len = s.q_len;
  p.kv_len = s.kv_len;
  p.head_dim = s.head_dim;
  p.value_dim = s.value_dim;
  p.scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  p.dtype = dtype;
  p.cross = s.q_len != s.kv_len;
  p.mask = make_mask(mask, json::object(), p.mask_shape());
  return p;
}

// A causal window of `width` keys whose place moves back by head_shift keys per head and batch_shift per
// batch: a mask with no closed form that differs per (batch, head), so kernels must keep one block map
// or byte plane per head.
class ShiftedWindow final : public Mask {
 public:
  ShiftedWindow(MaskShape s, std::int64_t head_shift, std::int64_t batch_shift, std::int64_t width)
      : Mask("test_shifted_window", Params{}, s), head_shift_(head_shift), batch_shift_(batch_shift), width_(width) {}
  bool allowed(std::int64_t b, std::int64_t h, std::int64_t q, std::int64_t k) const override {
    const std::int64_t at = q + shape().offset() - head_shift_ * h - batch_shift_ * b;
    return k <= at && k > at - width_;
  }
  bool varies_with_batch_or_head() const override { return true; }

 private:
  std::int64_t head_shift_, batch_shift_, width_;
};

inline const Method& method_named(const std::string& name) {
  const Method* m = MethodRegistry::instance().find(name);
  if (!m) throw std::runtime_error("method '" + name + "' is not registered");
  return *m;
}

// Plans and runs `name` on `inputs` with `given` parameters; the output is poisoned first.
inline Tensor run_method(const std::string& name, const Problem& p, const Inputs& inputs,
                         const json& given = json::object()) {
  const Method& m = method_named(name);
  const Params params = complete_params(m.info().params, given);
  const Device cpu{};
  const Support s = m.supports(p, params, cpu);
  if (!s) throw std::runtime_error("method '" + name + "' refused " + p.describe() + ": " + s.reason);
  Tensor out = make_output(p, m.output_dtype(p));
  out.poison();
  auto plan = m.plan(p, params, cpu);
  plan->prepare(inputs);
  plan->poison();
  plan->run(inputs, out);
  plan->collect(out);
  return out;
}

// ‖out − ref‖₂ / ‖ref‖₂; NaN anywhere in `out` makes it NaN (so comparisons fail).
inline double relative_l2(const Tensor& out, const Tensor& ref) {
  if (out.numel() != ref.numel()) throw std::invalid_argument("relative_l2: sizes differ");
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    const double d = out.get(i) - ref.get(i);
    num += d * d;
    den += ref.get(i) * ref.get(i);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace attnbench::testing
