// Tests of decode_splitk on CUDA (flash-decoding) against the float64 oracle: fp32/bf16/fp16, full and
// causal, MHA/GQA/MQA, several query rows per kv head (more than one row tile), head dims up to 256, odd
// lengths, caches of 4096 and 131072 keys with 1, 3 and auto splits; the splits a plan reports.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "cuda/cuda_support.hpp"
#include "datasets/generators.hpp"
#include "support/counters.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;
using testing::counter;

namespace {

void check_matches(const Tensor& out, const Tensor& ref, Dtype dtype) {
  REQUIRE(out.dtype() == dtype);
  testing::check_matches_reference(out, ref, dtype);
}

// The plan's counters after one run as the runner makes it (the `splits` it resolved).
Counters decode_counters(const Problem& p, const Inputs& in, const json& given) {
  const Device gpu{Device::Kind::cuda, 0};
  DeviceBackend& backend = *device_backend(Device::Kind::cuda);
  backend.select(gpu);
  const DeviceImpl& impl = *MethodRegistry::instance().impl("decode_splitk", Device::Kind::cuda);
  const Params params = complete_params(testing::method_named("decode_splitk").info().params, given);
  REQUIRE(impl.supports(p, params, gpu));
  Tensor out = make_output(p, p.dtype);
  auto plan = impl.plan(p, params, gpu);
  plan->prepare(in);
  plan->poison();
  plan->run(in, out);
  backend.synchronize(gpu);
  plan->collect(out);
  return plan->counters();
}

const std::vector<Shape>& small_shapes() {
  static const std::vector<Shape> all = {
      {1, 1, 1, 1, 1, 64, 64},       // a single query and key
      {2, 8, 2, 1, 100, 64, 64},     // one token, GQA group of 4, batch 2
      {1, 4, 1, 4, 257, 32, 48},     // MQA, 4 queries, value dim differs
      {1, 6, 3, 16, 300, 72, 72},    // max_queries queries: 32 rows per kv head, two row tiles
      {1, 2, 2, 7, 7, 40, 40},       // as many queries as keys
      {1, 2, 1, 12, 5, 16, 16},      // Lq > Lk: under causal the first 7 rows see nothing
      {1, 4, 2, 3, 333, 200, 136},   // head dim and value dim past 128 (the wide kernels)
      {1, 32, 1, 1, 129, 256, 256},  // MQA with 32 heads, head dim 256
  };
  return all;
}

}  // namespace

TEST_CASE("decode_splitk on CUDA equals the reference for any number of splits", "[cuda][decode_splitk]") {
  const std::string mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16, Dtype::f16);
  std::uint64_t seed = 700;
  for (const Shape& s : small_shapes()) {
    const Problem p = testing::make_problem(s, mask, dtype);
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const Tensor ref = testing::run_method("reference", p, in);
    for (const std::int64_t splits :
         {std::int64_t{0}, std::int64_t{1}, std::int64_t{2}, std::int64_t{3}, std::int64_t{7}, s.kv_len}) {
      if (splits > s.kv_len) continue;
      INFO(p.describe() << " Dv" << p.value_dim << " splits " << splits);
      check_matches(testing::run_on_cuda("decode_splitk", p, in, {{"splits", splits}}), ref, dtype);
    }
  }
}

TEST_CASE("decode_splitk on CUDA with a 4096-key cache", "[cuda][decode_splitk]") {
  const std::string mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16, Dtype::f16);
  const Shape shape =
      GENERATE(Shape{2, 8, 2, 1, 4096, 128, 128}, Shape{1, 32, 4, 4, 4096, 64, 64}, Shape{1, 5, 5, 3, 4099, 80, 48});
  const Problem p = testing::make_problem(shape, mask, dtype);
  const Inputs in = datasets::gaussian_inputs(p, 4096);
  const Tensor ref = testing::run_method("reference", p, in);
  for (const std::int64_t splits : {1, 3, 0}) {
    INFO(p.describe() << " Dv" << p.value_dim << " splits " << splits);
    check_matches(testing::run_on_cuda("decode_splitk", p, in, {{"splits", splits}}), ref, dtype);
  }
}

TEST_CASE("decode_splitk on CUDA with a 128K-key cache", "[cuda][decode_splitk]") {
  const std::string mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  const Problem p = testing::make_problem({1, 8, 2, 2, 131072, 64, 64}, mask, dtype);
  const Inputs in = datasets::gaussian_inputs(p, 131072);
  const Tensor ref = testing::run_method("reference", p, in);
  for (const std::int64_t splits : {1, 3, 0}) {
    INFO(p.describe() << " splits " << splits);
    check_matches(testing::run_on_cuda("decode_splitk", p, in, {{"splits", splits}}), ref, dtype);
  }
}

TEST_CASE("decode_splitk on CUDA reports the splits it used", "[cuda][decode_splitk]") {
  const Problem p = testing::make_problem({1, 8, 2, 1, 4096, 64, 64}, "causal", Dtype::bf16);
  const Inputs in = datasets::gaussian_inputs(p, 5);
  CHECK(counter(decode_counters(p, in, {{"splits", 3}}), "splits") == 3);
  CHECK(counter(decode_counters(p, in, {{"splits", 1}}), "splits") == 1);
  // Auto: at least one split, none shorter than 256 keys.
  const double automatic = counter(decode_counters(p, in, json::object()), "splits");
  CHECK(automatic >= 1);
  CHECK(automatic <= 4096 / 256);
}
