// Tests of the CUDA sliding_window, sink_window and moba: the first two against the float64 oracle under
// the pattern intersected with the problem's mask (and against their CPU methods), moba against the CPU
// moba and the float64 MoBA definition on every row whose selection is not a near-tie.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "cuda_support.hpp"
#include "datasets/generators.hpp"
#include "kernels/cpu/dynamic_sparse_oracle.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

void check_close(const Tensor& out, const Tensor& ref, Dtype dtype, const std::string& against) {
  INFO("against " << against);
  testing::check_matches_reference(out, ref, dtype);
}

// The method on CUDA against the oracle under pattern ∩ problem mask, and against the CPU method where
// the CPU computes the dtype.
void check_static_sparse(const std::string& method, Problem p, const json& params, std::uint64_t seed) {
  INFO(method << " " << params.dump() << " on " << p.describe() << " mask " << p.mask->name() << " seed " << seed);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor out = testing::run_on_cuda(method, p, in, params);
  REQUIRE(out.dtype() == p.dtype);
  Problem oracle = p;
  oracle.mask = intersect_masks(p.mask, make_mask(method, params, p.mask_shape()));
  check_close(out, testing::run_method("reference", oracle, in), p.dtype, "the float64 oracle");
  if (p.dtype != Dtype::f16) check_close(out, testing::run_method(method, p, in, params), p.dtype, "the CPU method");
}

}  // namespace

TEST_CASE("sliding_window on CUDA computes the composed mask exactly", "[cuda][sliding_window]") {
  const Dtype dtype = GENERATE(Dtype::f16, Dtype::bf16, Dtype::f32);
  const std::int64_t d = GENERATE(64, 128, 256);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  std::uint64_t seed = 501;
  for (const std::string mode : {"causal", "centred"})
    for (std::int64_t window : {1, 33, 100}) {
      check_static_sparse("sliding_window", testing::make_problem({1, 4, 2, 300, 300, d, d}, mask, dtype),
                          {{"window", window}, {"mode", mode}}, seed++);
      Problem shorter = testing::make_problem({2, 2, 1, 70, 190, d, d}, mask, dtype);  // Lq < Lk, one sequence
      shorter.cross = false;
      check_static_sparse("sliding_window", shorter, {{"window", window}, {"mode", mode}}, seed++);
    }
}

TEST_CASE("sink_window on CUDA computes the composed mask exactly", "[cuda][sink_window]") {
  const Dtype dtype = GENERATE(Dtype::f16, Dtype::bf16, Dtype::f32);
  const std::int64_t d = GENERATE(64, 128, 256);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  std::uint64_t seed = 601;
  for (std::int64_t sinks : {0, 4, 70})
    for (std::int64_t window : {1, 50}) {
      check_static_sparse("sink_window", testing::make_problem({1, 4, 1, 257, 257, d, d}, mask, dtype),
                          {{"sinks", sinks}, {"window", window}}, seed++);
      Problem shorter = testing::make_problem({1, 2, 2, 45, 200, d, d}, mask, dtype);
      shorter.cross = false;
      check_static_sparse("sink_window", shorter, {{"sinks", sinks}, {"window", window}}, seed++);
    }
}

TEST_CASE("sliding_window and sink_window on CUDA refuse what the CPU definition refuses", "[cuda][sink_window]") {
  const Device gpu{Device::Kind::cuda, 0};
  const DeviceImpl* sw = MethodRegistry::instance().impl("sliding_window", Device::Kind::cuda);
  REQUIRE(sw != nullptr);
  Problem cross = testing::make_problem({1, 1, 1, 64, 128, 64, 64}, "causal", Dtype::f16);
  const Params swp = complete_params(testing::method_named("sliding_window").info().params, {{"window", 16}});
  const Support s = sw->supports(cross, swp, gpu);
  CHECK_FALSE(s.ok);
  CHECK(s.reason.find("cross attention") != std::string::npos);
  const Params too_wide = complete_params(testing::method_named("sliding_window").info().params, {{"window", 500}});
  CHECK_FALSE(sw->supports(testing::make_problem({1, 1, 1, 64, 64, 64, 64}, "causal", Dtype::f16), too_wide, gpu).ok);
}

namespace {

// Rows outside near-ties of the float64 definition: relative L2 of `out` against `ref` over them.
double relative_l2_clear_rows(const Problem& p, const Tensor& out, const Tensor& ref, const testing::OracleResult& o) {
  double num = 0, den = 0;
  for (std::int64_t row = 0; row < p.batch * p.heads * p.q_len; ++row) {
    if (o.ambiguous[static_cast<std::size_t>(row)]) continue;
    for (std::int64_t c = 0; c < p.value_dim; ++c) {
      const double x = out.get(row * p.value_dim + c), y = ref.get(row * p.value_dim + c);
      num += (x - y) * (x - y);
      den += y * y;
    }
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace

TEST_CASE("moba on CUDA equals the CPU moba and the float64 MoBA definition", "[cuda][moba]") {
  const Dtype dtype = GENERATE(Dtype::f16, Dtype::bf16, Dtype::f32);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const std::vector<Shape> shapes = {
      {1, 2, 2, 300, 300, 64, 64},    // ragged last block
      {1, 4, 2, 200, 200, 128, 128},  // GQA
      {1, 2, 1, 50, 300, 64, 64},     // MQA, Lq < Lk
      {1, 2, 1, 130, 70, 256, 256},   // Lq > Lk: under causal the first 60 rows see nothing
  };
  std::uint64_t seed = 701;
  std::int64_t compared = 0, ambiguous = 0;
  for (const Shape& s : shapes)
    for (const auto& [block, topk] :
         std::vector<std::pair<std::int64_t, std::int64_t>>{{16, 1}, {16, 3}, {32, 2}, {100, 2}, {7, 4}, {64, 50}}) {
      const Problem p = testing::make_problem(s, mask, dtype);
      const json params = {{"block", block}, {"topk", topk}};
      INFO("moba " << params.dump() << " on " << p.describe() << " seed " << seed);
      const Inputs in = datasets::gaussian_inputs(p, seed++);
      const Tensor out = testing::run_on_cuda("moba", p, in, params);
      REQUIRE(out.dtype() == p.dtype);
      const testing::OracleResult oracle = testing::block_oracle(p, in, testing::moba_under_test().rule(block, topk));
      std::int64_t rows = 0;
      const double err = testing::relative_l2_unambiguous(p, out, oracle, &rows);
      INFO("relative L2 error against the float64 definition over " << rows << " rows: " << err);
      CHECK(err <= testing::oracle_tolerance(dtype));
      compared += rows;
      ambiguous += testing::count_ambiguous(oracle);
      if (dtype != Dtype::f16) {
        const Tensor cpu = testing::run_method("moba", p, in, params);
        const double cpu_err = relative_l2_clear_rows(p, out, cpu, oracle);
        INFO("relative L2 error against the CPU moba: " << cpu_err);
        CHECK(cpu_err <= testing::oracle_tolerance(dtype));
      }
      for (std::int64_t row = 0; row < p.batch * p.heads * p.q_len; ++row)
        if (!oracle.ambiguous[static_cast<std::size_t>(row)])
          for (std::int64_t c = 0; c < p.value_dim; ++c)
            if (oracle.out[static_cast<std::size_t>(row * p.value_dim + c)] == 0.0) {
              INFO("row " << row << " sees no key: expected 0");
              REQUIRE(out.get(row * p.value_dim + c) == 0.0);
            }
    }
  INFO(ambiguous << " near-tie rows skipped of " << compared + ambiguous);
  CHECK(ambiguous * 20 <= compared + ambiguous);
}

TEST_CASE("moba on CUDA refuses more key blocks than its selection holds", "[cuda][moba]") {
  const DeviceImpl* impl = MethodRegistry::instance().impl("moba", Device::Kind::cuda);
  REQUIRE(impl != nullptr);
  const Params params = complete_params(testing::method_named("moba").info().params, {{"block", 1}});
  const Support s = impl->supports(testing::make_problem({1, 1, 1, 4096, 4096, 64, 64}, "causal", Dtype::bf16), params,
                                   Device{Device::Kind::cuda, 0});
  CHECK_FALSE(s.ok);
  CHECK(s.reason.find("raise block") != std::string::npos);
  const Support doc = impl->supports(
      [] {
        Problem p = testing::make_problem({1, 1, 1, 64, 64, 64, 64}, "full", Dtype::f16);
        p.mask = make_mask("document", {{"documents", 2}}, p.mask_shape());
        return p;
      }(),
      complete_params(testing::method_named("moba").info().params, json::object()), Device{Device::Kind::cuda, 0});
  CHECK_FALSE(doc.ok);
}
