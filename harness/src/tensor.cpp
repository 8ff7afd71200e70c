// Host tensor storage: 64-byte aligned, with typed views and widening element access.
#include "attnbench/tensor.hpp"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <stdexcept>

namespace attnbench {

void Tensor::FreeDeleter::operator()(void* p) const { ::operator delete (p, std::align_val_t{64}); }

Tensor::Tensor(Dtype dtype, std::array<std::int64_t, 4> shape) : dtype_(dtype), shape_(shape) {
  for (auto n : shape)
    if (n < 0) throw std::invalid_argument("tensor dimension must not be negative");
  std::size_t bytes = nbytes();
  std::size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  // Through operator new so that the harness's memory accounting sees tensors too.
  data_.reset(::operator new (rounded, std::align_val_t{64}));
}

float* Tensor::f32() {
  if (dtype_ != Dtype::f32) throw std::logic_error("tensor is not fp32");
  return static_cast<float*>(data());
}
const float* Tensor::f32() const { return const_cast<Tensor*>(this)->f32(); }
std::uint16_t* Tensor::bf16() {
  if (dtype_ != Dtype::bf16) throw std::logic_error("tensor is not bf16");
  return static_cast<std::uint16_t*>(data());
}
const std::uint16_t* Tensor::bf16() const { return const_cast<Tensor*>(this)->bf16(); }
std::uint16_t* Tensor::f16() {
  if (dtype_ != Dtype::f16) throw std::logic_error("tensor is not fp16");
  return static_cast<std::uint16_t*>(data());
}
const std::uint16_t* Tensor::f16() const { return const_cast<Tensor*>(this)->f16(); }
double* Tensor::f64() {
  if (dtype_ != Dtype::f64) throw std::logic_error("tensor is not fp64");
  return static_cast<double*>(data());
}
const double* Tensor::f64() const { return const_cast<Tensor*>(this)->f64(); }

double Tensor::get(std::int64_t i) const {
  switch (dtype_) {
    case Dtype::f32:
      return static_cast<const float*>(data())[i];
    case Dtype::bf16:
      return bf16_to_float(static_cast<const std::uint16_t*>(data())[i]);
    case Dtype::f64:
      return static_cast<const double*>(data())[i];
    case Dtype::f16:
      return fp16_to_float(static_cast<const std::uint16_t*>(data())[i]);
  }
  return 0;
}

void Tensor::set(std::int64_t i, double v) {
  switch (dtype_) {
    case Dtype::f32:
      static_cast<float*>(data())[i] = static_cast<float>(v);
      break;
    case Dtype::bf16:
      static_cast<std::uint16_t*>(data())[i] = float_to_bf16(static_cast<float>(v));
      break;
    case Dtype::f64:
      static_cast<double*>(data())[i] = v;
      break;
    case Dtype::f16:
      static_cast<std::uint16_t*>(data())[i] = float_to_fp16(static_cast<float>(v));
      break;
  }
}

std::vector<double> Tensor::to_f64() const {
  std::vector<double> out(static_cast<std::size_t>(numel()));
  for (std::int64_t i = 0; i < numel(); ++i) out[i] = get(i);
  return out;
}

void Tensor::poison() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::int64_t i = 0; i < numel(); ++i) set(i, nan);
}

}  // namespace attnbench
