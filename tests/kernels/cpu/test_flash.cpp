// Tests of the flash method and its tiled core: against the float64 reference over shapes, masks,
// head layouts and tile sizes, and its memory staying flat as the sequence grows.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "attnbench/memory.hpp"
#include "datasets/generators.hpp"
#include "kernels/cpu/flash_core.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

struct Case {
  Shape shape;
  std::int64_t block_q, block_k;
};

std::string name_of(const Problem& p, const Case& c) {
  return p.describe() + " Dv" + std::to_string(p.value_dim) + " block " + std::to_string(c.block_q) + "x" +
         std::to_string(c.block_k);
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {{1, 1, 1, 1, 1, 64, 64}, 64, 128},        // a single query and key
      {{2, 2, 2, 7, 7, 40, 40}, 8, 16},          // odd length, head dim 40, batch 2
      {{1, 8, 2, 100, 100, 64, 64}, 16, 48},     // GQA, blocks that do not divide L
      {{1, 4, 1, 257, 257, 128, 128}, 64, 128},  // MQA, head dim 128, ragged last tile
      {{1, 2, 2, 37, 100, 72, 72}, 32, 16},      // cross attention, Lq < Lk, head dim 72
      {{1, 2, 1, 100, 37, 64, 40}, 24, 32},      // Lq > Lk: under causal the first 63 rows see nothing
      {{2, 3, 3, 65, 129, 96, 48}, 64, 128},     // head dim 96, value dim 48, one past a tile
      {{1, 2, 2, 300, 300, 64, 64}, 128, 256},   // several full and partial tiles
  };
  return all;
}

// A mask kernels know no closed form for: a window of `width` keys ending at the query's position,
// optionally shifted per head, so the generic predicate and block-map paths are exercised.
class WindowMask final : public Mask {
 public:
  WindowMask(MaskShape s, std::int64_t width, bool per_head)
      : Mask("test_window", Params{}, s), width_(width), per_head_(per_head) {}
  bool allowed(std::int64_t, std::int64_t h, std::int64_t q, std::int64_t k) const override {
    const std::int64_t at = q + shape().offset() - (per_head_ ? h * 3 : 0);
    return k <= at && k > at - width_;
  }
  bool varies_with_batch_or_head() const override { return per_head_; }

 private:
  std::int64_t width_;
  bool per_head_;
};

void check_against_reference(const Problem& p, const Case& c, std::uint64_t seed, double tolerance) {
  INFO(name_of(p, c) << " seed " << seed);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor ref = testing::run_method("reference", p, in);
  const Tensor out = testing::run_method("flash", p, in, {{"block_q", c.block_q}, {"block_k", c.block_k}});
  REQUIRE(out.dtype() == p.dtype);
  const double err = testing::relative_l2(out, ref);
  INFO("relative L2 error " << err);
  CHECK(err <= tolerance);
  // Rows with no allowed key are zeros in both (the reference defines the convention).
  for (std::int64_t i = 0; i < out.numel(); ++i)
    if (ref.get(i) == 0.0) {
      INFO("element " << i);
      REQUIRE(out.get(i) == 0.0);
    }
}

}  // namespace

TEST_CASE("flash fp32 matches the float64 reference", "[flash]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  std::uint64_t seed = 11;
  for (const Case& c : cases()) {
    const Problem p = testing::make_problem(c.shape, mask, Dtype::f32);
    check_against_reference(p, c, seed++, 1e-5);
  }
}

TEST_CASE("flash bf16 matches the float64 reference", "[flash]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  std::uint64_t seed = 101;
  for (const Case& c : cases()) {
    const Problem p = testing::make_problem(c.shape, mask, Dtype::bf16);
    check_against_reference(p, c, seed++, 1e-2);
  }
}

TEST_CASE("flash writes zeros for queries that see no key", "[flash]") {
  // Lq > Lk, causal, bottom-right aligned: query q sees keys k <= q - 63, so rows 0..62 see none.
  const Problem p = testing::make_problem({1, 2, 1, 100, 37, 64, 40}, "causal");
  const Inputs in = datasets::gaussian_inputs(p, 7);
  const Tensor out = testing::run_method("flash", p, in, {{"block_q", 24}, {"block_k", 32}});
  for (std::int64_t h = 0; h < 2; ++h)
    for (std::int64_t q = 0; q < 100; ++q)
      for (std::int64_t c = 0; c < 40; ++c) {
        const double x = out.get((h * 100 + q) * 40 + c);
        if (q < 63)
          REQUIRE(x == 0.0);
        else
          REQUIRE(std::isfinite(x));
      }
}

TEST_CASE("flash core honours a mask it has no closed form for", "[flash]") {
  const bool per_head = GENERATE(false, true);
  const bool with_maps = GENERATE(false, true);
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  Problem p = testing::make_problem({2, 4, 2, 150, 170, 64, 64}, "full", dtype);
  p.mask = std::make_shared<const WindowMask>(p.mask_shape(), 40, per_head);
  INFO("per_head " << per_head << " block maps " << with_maps << " " << to_string(dtype));

  const Inputs in = datasets::gaussian_inputs(p, per_head ? 5 : 6);
  const Tensor ref = testing::run_method("reference", p, in);
  kernels::FlashConfig cfg = with_maps ? kernels::make_flash_config(p, 32, 48) : kernels::FlashConfig{32, 48, {}};
  if (with_maps) REQUIRE(cfg.block_maps.size() == (per_head ? 8u : 1u));
  kernels::FlashWorkspace ws(p, cfg, 2);
  Tensor out = make_output(p, dtype);
  out.poison();
  kernels::flash_forward_cpu(p, in, out, cfg, ws);
  CHECK(testing::relative_l2(out, ref) <= (dtype == Dtype::f32 ? 1e-5 : 1e-2));
}

TEST_CASE("flash declares its parameters, FLOPs and support", "[flash]") {
  const Method& m = testing::method_named("flash");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::exact);
  REQUIRE(info.params.size() == 3);
  CHECK(info.params[0].name == "block_q");
  CHECK(info.params[0].default_value == 64);
  CHECK(info.params[1].name == "block_k");
  CHECK(info.params[1].default_value == 128);
  CHECK(info.params[2].name == "warp_rows");  // the CUDA tensor-core kernel's; the CPU ignores it
  CHECK(info.params[2].default_value == 0);
  const Problem p = testing::make_problem({1, 8, 8, 512, 512, 64, 64}, "causal");
  const Params params = complete_params(info.params, json::object());
  CHECK(m.flops(p, params) == Approx(4.0 * 8 * 512 * 512 * 64 / 2));
  CHECK(m.supports(p, params, Device{}));
  CHECK_FALSE(m.supports(testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64), params, Device{}));
  CHECK_FALSE(m.supports(p, params, Device{Device::Kind::cuda, 0}));
}

namespace {
// Heap high-water mark of plan + one run, with inputs and output allocated beforehand.
std::int64_t peak_of(const std::string& method, std::int64_t len) {
  const Problem p = testing::make_problem({1, 2, 2, len, len, 64, 64}, "causal");
  const Inputs in = datasets::gaussian_inputs(p, 3);
  Tensor out = make_output(p, p.dtype);
  const Method& m = testing::method_named(method);
  const Params params = complete_params(m.info().params, json::object());
  memory::reset_peak();
  {
    auto plan = m.plan(p, params, Device{});
    plan->run(in, out);
  }
  return memory::peak_bytes();
}
}  // namespace

TEST_CASE("flash run allocates nothing on the heap", "[flash]") {
  const Problem p = testing::make_problem({1, 4, 2, 300, 300, 72, 72}, "causal", Dtype::bf16);
  const Inputs in = datasets::gaussian_inputs(p, 9);
  Tensor out = make_output(p, p.dtype);
  const Method& m = testing::method_named("flash");
  auto plan = m.plan(p, complete_params(m.info().params, json::object()), Device{});
  memory::reset_peak();
  plan->run(in, out);
  CHECK(memory::peak_bytes() == 0);
}

TEST_CASE("flash memory does not grow with sequence length, dense grows with its square", "[flash][dense]") {
  const std::int64_t flash_1k = peak_of("flash", 1024), flash_4k = peak_of("flash", 4096);
  const std::int64_t dense_1k = peak_of("dense", 1024), dense_4k = peak_of("dense", 4096);
  INFO("flash " << flash_1k << " -> " << flash_4k << " bytes; dense " << dense_1k << " -> " << dense_4k);
  CHECK(flash_4k <= flash_1k + 64 * 1024);  // the same per-thread tiles, give or take bookkeeping
  CHECK(flash_4k < 4 * 1024 * 1024);
  CHECK(dense_4k >= std::int64_t{2} * 4096 * 4096 * 4);  // the score matrix itself (B1 H2 fp32)
  CHECK(static_cast<double>(dense_4k) / static_cast<double>(dense_1k) > 15.0);
}
