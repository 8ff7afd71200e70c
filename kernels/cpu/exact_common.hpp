// Pieces every fp32/bf16 CPU attention kernel here shares: widening and narrowing of elements, a
// vectorisable e^x, the element-type dispatch, typed views of the inputs and output, the common
// refusals, and per-thread scratch built once in plan().
#pragma once
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "attnbench/method.hpp"
#include "attnbench/problem.hpp"
#include "attnbench/tensor.hpp"
#include "kernels/cpu/simd_tiles.hpp"

namespace attnbench::kernels {

// Elements as fp32: the kernels compute in fp32 from fp32 or bf16 storage (the flash core's own).
using simd::narrow;
using simd::widen;

// e^x for x <= 0, relative error about 2e-7 (2^f by simd::exp2_fraction);
// x below −87 (including −inf) gives exactly 0. Branch-free, so `omp simd` loops vectorize it where
// std::exp would stay a scalar call.
inline float exp_nonpositive(float x) {
  const bool underflow = x < -87.0f;
  const float t = (underflow ? -87.0f : x) * 1.4426950408889634f;  // e^x = 2^t
  const float n = (t + 12582912.0f) - 12582912.0f;                 // round to nearest: 1.5·2^23 trick
  const float poly = simd::exp2_fraction(t - n);
  const std::int32_t bits = std::bit_cast<std::int32_t>(poly) + (static_cast<std::int32_t>(n) << 23);
  return underflow ? 0.0f : std::bit_cast<float>(bits);
}

// Calls forward(float{}) or forward(std::uint16_t{}) (bf16 bits) after the problem's dtype: the kernels
// compute in fp32 from either, and are templated on the stored element type.
template <class Forward>
void dispatch_fp32_or_bf16(Dtype dtype, Forward&& forward) {
  if (dtype == Dtype::bf16)
    forward(std::uint16_t{});
  else
    forward(float{});
}

// The raw Q, K, V and O of one run, as arrays of the stored element type T.
template <class T>
struct TypedIO {
  const T* q;
  const T* k;
  const T* v;
  T* o;
  TypedIO(const Inputs& in, Tensor& out)
      : q(static_cast<const T*>(in.q.data())),
        k(static_cast<const T*>(in.k.data())),
        v(static_cast<const T*>(in.v.data())),
        o(static_cast<T*>(out.data())) {}
};

// The dynamic-sparse and chunked methods are defined over a full or causal problem; any other mask would
// need a definition of how it combines with the selection or the chunking, which the papers do not give.
inline Support full_or_causal_only(const std::string& method, const Problem& p) {
  if (!p.mask) return Support::no(method + " needs a problem with a mask");
  if (!p.mask->is_full() && !p.mask->is_causal())
    return Support::no(method + " supports the full and causal masks only, not '" + p.mask->name() +
                       "'; run it on a full or causal problem");
  return Support::yes();
}

inline Support fp32_or_bf16_only(const std::string& method, const Problem& p) {
  if (p.dtype != Dtype::f32 && p.dtype != Dtype::bf16)
    return Support::no(method + " computes in fp32 from fp32 or bf16 inputs, not " + std::string(to_string(p.dtype)));
  return Support::yes();
}

// A Plan whose run() calls derived.forward(TypedIO<T>) with T the problem's stored element type; the
// derived plan writes only the typed kernel.
template <class Derived>
class Fp32OrBf16Plan : public Plan {
 public:
  explicit Fp32OrBf16Plan(Dtype dtype) : dtype_(dtype) {}

  void run(const Inputs& in, Tensor& out) final {
    dispatch_fp32_or_bf16(
        dtype_, [&](auto element) { static_cast<Derived*>(this)->forward(TypedIO<decltype(element)>(in, out)); });
  }

 private:
  Dtype dtype_;
};

// The refusals these kernels share, in order: the harness's own (backend, shape), then the element
// type, then the mask. A method adds its own checks after these.
inline Support fp32_bf16_full_or_causal(const Method& m, const std::string& method, const Problem& p,
                                        const Params& params, const Device& d) {
  if (Support s = m.Method::supports(p, params, d); !s) return s;
  if (Support s = fp32_or_bf16_only(method, p); !s) return s;
  if (Support s = full_or_causal_only(method, p); !s) return s;
  return Support::yes();
}

// One Scratch per thread, constructed in place from args (no temporary copy in the memory peak).
template <class Scratch, class... Args>
std::vector<Scratch> per_thread_scratch(std::int64_t threads, const Args&... args) {
  std::vector<Scratch> scratch;
  scratch.reserve(static_cast<std::size_t>(threads));
  for (std::int64_t t = 0; t < threads; ++t) scratch.emplace_back(args...);
  return scratch;
}

inline std::int64_t max_threads() { return std::max(1, omp_get_max_threads()); }

}  // namespace attnbench::kernels
