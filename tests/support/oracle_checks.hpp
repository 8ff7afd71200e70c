// The check every method test makes against the float64 oracle: the relative L2 error within the
// dtype's tolerance (fp32 1e-5, fp16/bf16 1e-2), and exact zeros wherever the reference is zero (rows
// whose mask leaves no key).
#pragma once
#include <catch2/catch.hpp>
#include <cstdint>

#include "attnbench/dtype.hpp"
#include "attnbench/tensor.hpp"
#include "support/problems.hpp"

namespace attnbench::testing {

inline double oracle_tolerance(Dtype d) { return d == Dtype::f32 ? 1e-5 : 1e-2; }

inline void check_matches_reference(const Tensor& out, const Tensor& ref, Dtype dtype) {
  const double err = relative_l2(out, ref);
  INFO("relative L2 error " << err << ", expected at most " << oracle_tolerance(dtype));
  CHECK(err <= oracle_tolerance(dtype));
  for (std::int64_t i = 0; i < out.numel(); ++i)
    if (ref.get(i) == 0.0) {
      INFO("element " << i << " of a row that sees no key: expected 0, got " << out.get(i));
      REQUIRE(out.get(i) == 0.0);
    }
}

}  // namespace attnbench::testing
