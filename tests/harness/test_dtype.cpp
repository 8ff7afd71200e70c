// Element types: fp16 and bf16 conversions against values worked out by hand, and tensors of each type.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "attnbench/dtype.hpp"
#include "attnbench/tensor.hpp"

using namespace attnbench;

TEST_CASE("fp16 conversion: exact values, rounding to nearest even, range and specials", "[dtype]") {
  CHECK(float_to_fp16(1.0f) == 0x3C00);
  CHECK(float_to_fp16(-2.0f) == 0xC000);
  CHECK(float_to_fp16(65504.0f) == 0x7BFF);               // largest finite half
  CHECK(float_to_fp16(65536.0f) == 0x7C00);               // overflows to +inf
  CHECK(float_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even significand (1.0).
  CHECK(float_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
  CHECK(float_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
  CHECK(std::isnan(fp16_to_float(float_to_fp16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(fp16_to_float(0x3555) == Approx(0.333251953125).epsilon(0));
  for (float x : {0.1f, -3.75f, 1234.5f, 6.0e-5f})
    CHECK(std::abs(fp16_to_float(float_to_fp16(x)) - x) <= std::abs(x) * std::ldexp(1.0f, -11) + 6e-8f);
}

TEST_CASE("fp16 tensors store, widen and poison like the other types", "[dtype]") {
  CHECK(parse_dtype("fp16") == Dtype::f16);
  CHECK(parse_dtype("half") == Dtype::f16);
  CHECK(to_string(Dtype::f16) == "fp16");
  CHECK(dtype_size(Dtype::f16) == 2);
  Tensor t(Dtype::f16, {1, 2, 3, 4});
  CHECK(t.nbytes() == 48);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, 0.25 * static_cast<double>(i) - 2.0);
  for (std::int64_t i = 0; i < t.numel(); ++i) CHECK(t.get(i) == 0.25 * static_cast<double>(i) - 2.0);
  CHECK(t.f16()[8] == float_to_fp16(0.0f));
  CHECK_THROWS(t.bf16());
  t.poison();
  for (std::int64_t i = 0; i < t.numel(); ++i) CHECK(std::isnan(t.get(i)));
}
