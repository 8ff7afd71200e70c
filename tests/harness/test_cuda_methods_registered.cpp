// The GPU methods' registrations, checked where CUDA is built even without a device: which backends each
// method lists, that the CPU refuses the GPU-only `cublas` with a sentence, and the refusals of the CUDA
// implementations that need no device to decide.
#ifdef ATTNBENCH_HAVE_CUDA
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "attnbench/catalog.hpp"
#include "attnbench/method.hpp"
#include "kernels/cuda/flash_args.hpp"
#include "support/problems.hpp"

using namespace attnbench;

namespace {
const std::vector<std::string> kCpuAndCuda{"cpu", "cuda"};
const std::vector<std::string> kCudaOnly{"cuda"};
}  // namespace

TEST_CASE("cublas lists the cuda backend only; dense and decode_splitk list cpu and cuda", "[cuda][methods]") {
  const MethodRegistry& reg = MethodRegistry::instance();
  CHECK(reg.backends("cublas") == kCudaOnly);
  CHECK(reg.backends("dense") == kCpuAndCuda);
  CHECK(reg.backends("decode_splitk") == kCpuAndCuda);
  REQUIRE(reg.impl("cublas", Device::Kind::cuda) != nullptr);
  CHECK(reg.impl("cublas", Device::Kind::cpu) == nullptr);

  const MethodInfo info = testing::method_named("cublas").info();
  CHECK(info.family == Family::exact);
  CHECK(info.backends.empty());
  CHECK(info.params.empty());
  CHECK_THAT(list_methods(), Catch::Contains("cublas [exact; backends: cuda]") &&
                                 Catch::Contains("dense [exact; backends: cpu, cuda]") &&
                                 Catch::Contains("decode_splitk [decode; backends: cpu, cuda]"));
}

TEST_CASE("flash_sync is GPU-only, takes fp16 and bf16, and the CPU refuses it with a sentence", "[cuda][methods]") {
  const MethodRegistry& reg = MethodRegistry::instance();
  CHECK(reg.backends("flash_sync") == kCudaOnly);
  const DeviceImpl* impl = reg.impl("flash_sync", Device::Kind::cuda);
  REQUIRE(impl != nullptr);
  CHECK(reg.impl("flash_sync", Device::Kind::cpu) == nullptr);
  const Method& m = testing::method_named("flash_sync");
  const Params params = complete_params(m.info().params, json::object());
  const Problem bf16 = testing::make_problem({1, 2, 2, 16, 16, 64, 64}, "causal", Dtype::bf16);
  const Support cpu = m.supports(bf16, params, Device{});
  CHECK_FALSE(cpu);
  CHECK_THAT(cpu.reason, Catch::Contains("flash_sync runs on CUDA devices only"));
  CHECK_THROWS_WITH(m.plan(bf16, params, Device{}), Catch::Contains("flash_sync has no plan for cpu"));
  const Device gpu{Device::Kind::cuda, 0};
  CHECK(impl->supports(bf16, params, gpu));
  const Support f32 = impl->supports(testing::make_problem({1, 2, 2, 16, 16, 64, 64}, "causal"), params, gpu);
  CHECK_FALSE(f32);
  CHECK_THAT(f32.reason, Catch::Contains("fp16 or bf16 only"));
  const Support d96 = impl->supports(testing::make_problem({1, 2, 2, 16, 16, 96, 96}, "full", Dtype::f16), params, gpu);
  CHECK_FALSE(d96);
  CHECK_THAT(d96.reason, Catch::Contains("head_dim 64, 128 or 256"));
}

TEST_CASE("flash on CUDA takes warp_rows 0, 16 or 32, and 32 only where the accumulators fit", "[cuda][methods]") {
  const DeviceImpl* impl = MethodRegistry::instance().impl("flash", Device::Kind::cuda);
  REQUIRE(impl != nullptr);
  const Device gpu{Device::Kind::cuda, 0};
  const auto params = [](std::int64_t rows) {
    return complete_params(testing::method_named("flash").info().params, {{"warp_rows", rows}});
  };
  const auto problem = [](std::int64_t d, Dtype dtype) {
    return testing::make_problem({1, 2, 2, 16, 16, d, d}, "causal", dtype);
  };
  for (const std::int64_t rows : {0, 16, 32}) {
    CHECK(impl->supports(problem(64, Dtype::bf16), params(rows), gpu));
    CHECK(impl->supports(problem(128, Dtype::f16), params(rows), gpu));
  }
  CHECK(impl->supports(problem(256, Dtype::bf16), params(0), gpu));  // the default is 16 there
  CHECK(impl->supports(problem(256, Dtype::bf16), params(16), gpu));
  const Support wide = impl->supports(problem(256, Dtype::bf16), params(32), gpu);
  CHECK_FALSE(wide);
  CHECK_THAT(wide.reason, Catch::Contains("warp_rows 32 needs head_dim <= 128"));
  const Support odd = impl->supports(problem(64, Dtype::bf16), params(8), gpu);
  CHECK_FALSE(odd);
  CHECK_THAT(odd.reason, Catch::Contains("warp_rows must be 0 (the default for the head dim), 16 or 32, not 8"));
  CHECK(impl->supports(problem(256, Dtype::f32), params(32), gpu));  // the fp32 kernel has no warp rows
  Problem negative = problem(64, Dtype::bf16);
  negative.scale = -0.125;  // the kernels take the row maximum of unscaled scores
  const Support neg = impl->supports(negative, params(0), gpu);
  CHECK_FALSE(neg);
  CHECK_THAT(neg.reason, Catch::Contains("the scale must be positive"));

  // What the kernels are given: the query tile is four warps' rows; flash_sync's plain kernel has 16.
  cuda::LoweredMask lowered;
  const Problem d64 = problem(64, Dtype::bf16), d256 = problem(256, Dtype::bf16);
  CHECK(cuda::flash_args_for(d64, *d64.mask, nullptr, {}, lowered).block_q == 128);
  CHECK(cuda::flash_args_for(d64, *d64.mask, nullptr, {true, 16}, lowered).block_q == 64);
  CHECK(cuda::flash_args_for(d64, *d64.mask, nullptr, {false, 0}, lowered).block_q == 64);
  CHECK(cuda::flash_args_for(d256, *d256.mask, nullptr, {}, lowered).block_q == 64);
  CHECK_THROWS_WITH(cuda::flash_args_for(d256, *d256.mask, nullptr, {true, 32}, lowered),
                    Catch::Contains("warp_rows 32 needs head_dim <= 128"));
  CHECK_THROWS_WITH(cuda::flash_args_for(d64, *d64.mask, nullptr, {false, 32}, lowered),
                    Catch::Contains("16 query rows per warp only"));
  // A lowered mask is lowered for the kernel's query tile.
  Problem doc = problem(64, Dtype::bf16);
  doc.mask = make_mask("document", {{"doc_lens", "5,11"}, {"causal", true}}, doc.mask_shape());
  const cuda::FlashArgs a = cuda::flash_args_for(doc, *doc.mask, nullptr, {}, lowered);
  CHECK(a.mode == cuda::MaskMode::tiles);
  CHECK(lowered.block_q == 128);
  CHECK(a.warp_rows == 32);
}

TEST_CASE("the CPU refuses cublas with a sentence and has no plan for it", "[cuda][methods]") {
  const Method& m = testing::method_named("cublas");
  const Problem p = testing::make_problem({1, 2, 2, 16, 16, 64, 64}, "causal");
  const Params params = complete_params(m.info().params, json::object());
  const Support s = m.supports(p, params, Device{});
  CHECK_FALSE(s);
  CHECK_THAT(s.reason, Catch::Contains("cublas runs on CUDA devices only") && Catch::Contains("--device cuda"));
  CHECK_THROWS_WITH(m.plan(p, params, Device{}), Catch::Contains("cublas has no plan for cpu"));
  // Its FLOPs are the exact count; its bytes add the fp32 score matrix written once and read twice,
  // and the fp32 probabilities written and read once.
  CHECK(m.flops(p, params) == Approx(attention_flops(p)));
  CHECK(m.bytes(p, params) == Approx(attention_bytes(p) + 2.0 * 16 * 16 * (12.0 + 8.0)));
}

// These refusals come before any device query, so they are the same with or without a GPU.
TEST_CASE("the CUDA implementations refuse what their kernels cannot run", "[cuda][methods]") {
  const Device gpu{Device::Kind::cuda, 0};
  const DeviceImpl* decode = MethodRegistry::instance().impl("decode_splitk", Device::Kind::cuda);
  const DeviceImpl* dense = MethodRegistry::instance().impl("dense", Device::Kind::cuda);
  const DeviceImpl* cublas = MethodRegistry::instance().impl("cublas", Device::Kind::cuda);
  REQUIRE(decode != nullptr);
  REQUIRE(dense != nullptr);
  REQUIRE(cublas != nullptr);
  const auto decode_params = [](const json& given) {
    return complete_params(testing::method_named("decode_splitk").info().params, given);
  };

  const Problem prefill = testing::make_problem({1, 8, 2, 17, 4096, 64, 64}, "causal", Dtype::f16);
  Support s = decode->supports(prefill, decode_params(json::object()), gpu);
  CHECK_FALSE(s);
  CHECK_THAT(s.reason, Catch::Contains("q_len (17) exceeds max_queries (16)"));

  const Problem short_cache = testing::make_problem({1, 2, 2, 1, 5, 64, 64}, "full");
  s = decode->supports(short_cache, decode_params({{"splits", 6}}), gpu);
  CHECK_FALSE(s);
  CHECK_THAT(s.reason, Catch::Contains("splits (6) must not exceed kv_len (5)"));

  const Problem wide = testing::make_problem({1, 2, 2, 1, 64, 512, 512}, "full");
  s = decode->supports(wide, decode_params(json::object()), gpu);
  CHECK_FALSE(s);
  CHECK_THAT(s.reason, Catch::Contains("head_dim and value_dim up to 256"));

  Problem windowed = testing::make_problem({1, 2, 2, 1, 64, 64, 64}, "full");
  windowed.mask = make_mask("sliding_window", {{"window", 8}}, windowed.mask_shape());
  s = decode->supports(windowed, decode_params(json::object()), gpu);
  CHECK_FALSE(s);
  CHECK_THAT(s.reason, Catch::Contains("full and causal masks only, not 'sliding_window'"));

  const Problem fp64 = testing::make_problem({1, 2, 2, 4, 4, 64, 64}, "full", Dtype::f64);
  for (const DeviceImpl* impl : {decode, dense, cublas}) {
    const Support r = impl->supports(fp64, decode_params(json::object()), gpu);
    CHECK_FALSE(r);
    CHECK_THAT(r.reason, Catch::Contains("not fp64"));
  }
  const Problem ragged = testing::make_problem({1, 6, 4, 4, 4, 64, 64}, "full");
  const Support r = cublas->supports(ragged, Params{}, gpu);
  CHECK_FALSE(r);
  CHECK_THAT(r.reason, Catch::Contains("heads (6) must be a multiple of kv_heads (4)"));
}

#endif  // ATTNBENCH_HAVE_CUDA
