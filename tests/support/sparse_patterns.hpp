// Test helpers for the static sparse patterns and methods [sparse]: exact allowed sets, tile() checked
// against the element-wise definition, and a method run against the float64 reference on the same
// composed mask.
#pragma once
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "attnbench/mask.hpp"
#include "attnbench/rng.hpp"
#include "kernels/cpu/sparse_static.hpp"
#include "support/problems.hpp"

namespace attnbench::testing {

// A registered mask kind made for a self-attention (or bottom-right aligned) shape.
inline std::shared_ptr<const Mask> pattern_mask(const std::string& name, const json& params, std::int64_t q_len,
                                                std::int64_t k_len, std::int64_t heads = 1, std::int64_t batch = 1) {
  return make_mask(name, params, MaskShape{batch, heads, q_len, k_len});
}

// The keys query q may see, in order.
inline std::vector<std::int64_t> allowed_keys(const Mask& m, std::int64_t q, std::int64_t h = 0, std::int64_t b = 0) {
  std::vector<std::int64_t> keys;
  for (std::int64_t k = 0; k < m.shape().k_len; ++k)
    if (m.allowed(b, h, q, k)) keys.push_back(k);
  return keys;
}

// tile() against Mask::tile (the element-wise definition) over `count` random tiles of every (b, h),
// and the block maps that kernels use over a few grid sizes.
inline void check_tiles_against_elements(const Mask& m, std::uint64_t seed, int count = 400) {
  const MaskShape& s = m.shape();
  Rng rng(seed);
  auto pick = [&](std::int64_t n) { return static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n))); };
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t h = 0; h < s.heads; ++h)
      for (int i = 0; i < count; ++i) {
        // Mostly small tiles (where closed forms have edge cases), sometimes ones spanning everything.
        const std::int64_t max_q = i % 5 == 0 ? s.q_len : std::min<std::int64_t>(s.q_len, 1 + pick(40));
        const std::int64_t max_k = i % 7 == 0 ? s.k_len : std::min<std::int64_t>(s.k_len, 1 + pick(40));
        const std::int64_t q0 = pick(s.q_len), k0 = pick(s.k_len);
        const std::int64_t q1 = std::min(s.q_len, q0 + 1 + pick(max_q)), k1 = std::min(s.k_len, k0 + 1 + pick(max_k));
        const TileState fast = m.tile(b, h, q0, q1, k0, k1);
        const TileState exact = m.Mask::tile(b, h, q0, q1, k0, k1);
        INFO(m.name() << " " << m.params().canonical() << " b" << b << " h" << h << " tile q[" << q0 << "," << q1
                      << ") k[" << k0 << "," << k1 << ")");
        REQUIRE(static_cast<int>(fast) == static_cast<int>(exact));
      }
  for (const auto& [bq, bk] : std::vector<std::pair<std::int64_t, std::int64_t>>{{16, 16}, {64, 128}, {7, 13}}) {
    const BlockMap map = lower_to_block_map(m, s.batch - 1, s.heads - 1, bq, bk);
    for (std::int64_t qt = 0; qt < map.q_tiles; ++qt)
      for (std::int64_t kt = 0; kt < map.k_tiles; ++kt) {
        const std::int64_t q0 = qt * bq, k0 = kt * bk;
        const TileState exact =
            m.Mask::tile(s.batch - 1, s.heads - 1, q0, std::min(q0 + bq, s.q_len), k0, std::min(k0 + bk, s.k_len));
        INFO(m.name() << " block map " << bq << "x" << bk << " tile " << qt << "," << kt);
        REQUIRE(static_cast<int>(map.at(qt, kt)) == static_cast<int>(exact));
      }
  }
}

// Density counted by hand, to compare with Mask::density().
inline double counted_density(const Mask& m) {
  const MaskShape& s = m.shape();
  double n = 0;
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t h = 0; h < s.heads; ++h)
      for (std::int64_t q = 0; q < s.q_len; ++q)
        for (std::int64_t k = 0; k < s.k_len; ++k) n += m.allowed(b, h, q, k) ? 1 : 0;
  return n / static_cast<double>(s.batch * s.heads * s.q_len * s.k_len);
}

// Runs method `name` and the float64 reference on the problem with the SAME composed mask (the
// problem's mask intersected with the pattern), on fresh Gaussian inputs; returns the relative L2 error.
// Rows the composed mask leaves empty must be exact zeros in the method's output too.
inline double error_against_reference(const std::string& name, const Problem& p, const json& given,
                                      std::uint64_t seed) {
  const Method& m = method_named(name);
  const Params params = complete_params(m.info().params, given);
  Problem composed = p;
  composed.mask = intersect_masks(p.mask, make_mask(name, params.values(), p.mask_shape()));
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor ref = run_method("reference", composed, in);
  const Tensor out = run_method(name, p, in, given);
  REQUIRE(out.dtype() == p.dtype);
  for (std::int64_t i = 0; i < out.numel(); ++i)
    if (ref.get(i) == 0.0) {
      INFO("element " << i << " of a row with no allowed key");
      REQUIRE(out.get(i) == 0.0);
    }
  return relative_l2(out, ref);
}

// A self-attention problem (or, with q_len < kv_len, the last q_len queries of one sequence, as in
// chunked prefill: positions still mean something, so not cross attention).
inline Problem sequence_problem(const Shape& s, const std::string& mask, Dtype dtype = Dtype::f32) {
  Problem p = make_problem(s, mask, dtype);
  p.cross = false;
  return p;
}

struct SparseCase {
  Shape shape;
  json params;
};

// Every case under a full and a causal problem mask, fp32 and bf16, against the reference.
inline void check_method_cases(const std::string& name, const std::vector<SparseCase>& cases,
                               const std::vector<std::string>& problem_masks = {"full", "causal"}) {
  std::uint64_t seed = 1000;
  for (const std::string& mask : problem_masks)
    for (const Dtype dtype : {Dtype::f32, Dtype::bf16})
      for (const SparseCase& c : cases) {
        const Problem p = sequence_problem(c.shape, mask, dtype);
        const double tolerance = dtype == Dtype::f32 ? 1e-5 : 1e-2;
        const double err = error_against_reference(name, p, c.params, seed++);
        INFO(name << " " << c.params.dump() << " on " << p.describe() << ": relative L2 " << err);
        CHECK(err <= tolerance);
      }
}

// The reason a method gives for refusing `p` with `given` parameters ("" when it accepts).
inline std::string refusal(const std::string& name, const Problem& p, const json& given) {
  const Method& m = method_named(name);
  const Support s = m.supports(p, complete_params(m.info().params, given), Device{});
  return s ? std::string() : s.reason;
}

// The method's declared parameters are its mask kind's, and it is registered in the static family.
inline void check_declaration(const std::string& name) {
  const MethodInfo info = method_named(name).info();
  CHECK(info.name == name);
  CHECK(info.family == Family::sparse_static);
  CHECK_FALSE(info.summary.empty());
  CHECK_FALSE(info.reference.empty());
  const MaskKind* kind = MaskRegistry::instance().find(name);
  REQUIRE(kind != nullptr);
  REQUIRE(info.params.size() == kind->params.size());
  for (std::size_t i = 0; i < info.params.size(); ++i) {
    CHECK(info.params[i].name == kind->params[i].name);
    CHECK(info.params[i].default_value == kind->params[i].default_value);
  }
}

// Refusals every static sparse method shares: cross attention, queries without a position, dtypes and
// devices flash_core lacks. `given` must be parameters the method accepts on a 64x64 problem.
inline void check_common_refusals(const std::string& name, const json& given) {
  const Method& m = method_named(name);
  const Params params = complete_params(m.info().params, given);
  const Problem ok = sequence_problem({1, 2, 1, 64, 64, 32, 32}, "full");
  CHECK(m.supports(ok, params, Device{}));

  Problem cross = make_problem({1, 2, 1, 32, 64, 32, 32}, "full");
  REQUIRE(cross.cross);
  CHECK_THAT(refusal(name, cross, given), Catch::Contains("cross attention"));
  CHECK(refusal(name, sequence_problem({1, 2, 1, 32, 64, 32, 32}, "full"), given).empty());

  CHECK_THAT(refusal(name, sequence_problem({1, 2, 1, 80, 64, 32, 32}, "full"), given),
             Catch::Contains("q_len (80) must not exceed kv_len (64)"));
  CHECK_THAT(refusal(name, sequence_problem({1, 2, 1, 64, 64, 32, 32}, "full", Dtype::f64), given),
             Catch::Contains("fp32 or bf16"));
  CHECK_FALSE(m.supports(ok, params, Device{Device::Kind::cuda, 0}));
  CHECK_FALSE(m.supports(sequence_problem({1, 3, 2, 64, 64, 32, 32}, "full"), params, Device{}));
}

}  // namespace attnbench::testing
