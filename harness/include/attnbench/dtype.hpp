// Element types of attention inputs and outputs, and the bf16 <-> fp32 conversions the CPU paths use.
#pragma once
#include <bit>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace attnbench {

enum class Dtype { f32, bf16, f64, f16 };

inline std::string_view to_string(Dtype d) {
  switch (d) {
    case Dtype::f32:
      return "fp32";
    case Dtype::bf16:
      return "bf16";
    case Dtype::f64:
      return "fp64";
    case Dtype::f16:
      return "fp16";
  }
  return "?";
}

inline Dtype parse_dtype(std::string_view s) {
  if (s == "fp32" || s == "f32" || s == "float32") return Dtype::f32;
  if (s == "bf16" || s == "bfloat16") return Dtype::bf16;
  if (s == "fp64" || s == "f64" || s == "float64") return Dtype::f64;
  if (s == "fp16" || s == "f16" || s == "float16" || s == "half") return Dtype::f16;
  throw std::invalid_argument("unknown dtype '" + std::string(s) + "' (expected fp32, bf16, fp16 or fp64)");
}

inline std::size_t dtype_size(Dtype d) {
  switch (d) {
    case Dtype::f32:
      return 4;
    case Dtype::bf16:
      return 2;
    case Dtype::f64:
      return 8;
    case Dtype::f16:
      return 2;
  }
  return 0;
}

// bf16 is the upper half of an IEEE float; rounding to nearest even on the dropped half.
inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

inline float bf16_to_float(std::uint16_t h) { return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16); }

}  // namespace attnbench

namespace attnbench {

// IEEE binary16 through the compiler's _Float16 (round to nearest even, subnormals, inf and NaN kept).
inline std::uint16_t float_to_fp16(float f) { return std::bit_cast<std::uint16_t>(static_cast<_Float16>(f)); }
inline float fp16_to_float(std::uint16_t h) { return static_cast<float>(std::bit_cast<_Float16>(h)); }

}  // namespace attnbench
