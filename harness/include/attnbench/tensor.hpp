// A dense host tensor in [batch, heads, length, dim] order, stored as fp32, bf16, fp16 or fp64.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "attnbench/dtype.hpp"

namespace attnbench {

class Tensor {
 public:
  Tensor() = default;
  Tensor(Dtype dtype, std::array<std::int64_t, 4> shape);

  Dtype dtype() const { return dtype_; }
  const std::array<std::int64_t, 4>& shape() const { return shape_; }
  std::int64_t numel() const { return shape_[0] * shape_[1] * shape_[2] * shape_[3]; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return numel() == 0; }

  void* data() { return data_.get(); }
  const void* data() const { return data_.get(); }
  float* f32();
  const float* f32() const;
  std::uint16_t* bf16();
  const std::uint16_t* bf16() const;
  std::uint16_t* f16();
  const std::uint16_t* f16() const;
  double* f64();
  const double* f64() const;

  // Element i (flat index) widened to double, whatever the storage.
  double get(std::int64_t i) const;
  void set(std::int64_t i, double v);
  std::vector<double> to_f64() const;

  // Fills with NaN so that an output a method forgot to write cannot pass as correct.
  void poison();

 private:
  struct FreeDeleter {
    void operator()(void* p) const;
  };
  Dtype dtype_ = Dtype::f32;
  std::array<std::int64_t, 4> shape_{0, 0, 0, 0};
  std::unique_ptr<void, FreeDeleter> data_;
};

}  // namespace attnbench
