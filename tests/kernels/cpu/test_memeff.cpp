// Tests of the memeff method (Rabe & Staats chunking): against the float64 reference over shapes, masks,
// head layouts and chunk sizes; its measured memory bounded by the chunk sizes (and growing like
// √kv_len in sqrt mode); FLOPs, parameters and refusals.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "attnbench/memory.hpp"
#include "datasets/generators.hpp"
#include "kernels/cpu/dynamic_sparse_oracle.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

struct Case {
  Shape shape;
  std::int64_t query_chunk, key_chunk;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {{1, 1, 1, 1, 1, 64, 64}, 1024, 4096},     // a single query and key, the paper's chunks
      {{2, 2, 2, 7, 7, 40, 40}, 1, 1},           // one query and one key per chunk
      {{1, 8, 2, 100, 100, 64, 64}, 16, 48},     // GQA, chunks that do not divide L
      {{1, 4, 1, 257, 257, 128, 128}, 64, 100},  // MQA, head dim 128, ragged last chunks
      {{1, 2, 2, 37, 100, 72, 72}, 32, 16},      // cross attention, Lq < Lk
      {{1, 2, 1, 100, 37, 64, 40}, 24, 7},       // Lq > Lk: under causal the first 63 rows see nothing
      {{2, 3, 3, 65, 129, 96, 48}, 1024, 4096},  // chunks larger than the problem
      {{1, 2, 2, 300, 300, 64, 64}, 128, 256},   // several chunks of each kind
  };
  return all;
}

// Heap high-water mark of plan + one run, inputs and output allocated beforehand.
std::int64_t peak_of(const Problem& p, const json& given) {
  const Inputs in = datasets::gaussian_inputs(p, 3);
  Tensor out = make_output(p, p.dtype);
  const Method& m = testing::method_named("memeff");
  const Params params = complete_params(m.info().params, given);
  memory::reset_peak();
  {
    auto plan = m.plan(p, params, Device{});
    plan->run(in, out);
  }
  return memory::peak_bytes();
}

// The working memory the algorithm needs per thread: query chunk, transposed key chunk, score chunk,
// and the per-key-chunk summaries (partial output, max, sum) of one query chunk, in fp32.
double chunk_bytes(const Problem& p, std::int64_t qc, std::int64_t kc) {
  const double key_chunks = std::ceil(static_cast<double>(p.kv_len) / static_cast<double>(kc));
  return 4.0 * (static_cast<double>(qc * p.head_dim + kc * p.head_dim + qc * kc) +
                key_chunks * static_cast<double>(qc * (p.value_dim + 2)));
}

}  // namespace

TEST_CASE("memeff matches the float64 reference", "[memeff][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Dtype dtype = GENERATE(Dtype::f32, Dtype::bf16);
  std::uint64_t seed = 800;
  for (const Case& c : cases()) {
    const Problem p = testing::make_problem(c.shape, mask, dtype);
    INFO(p.describe() << " chunks " << c.query_chunk << "x" << c.key_chunk);
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const Tensor ref = testing::run_method("reference", p, in);
    const Tensor out =
        testing::run_method("memeff", p, in, {{"query_chunk", c.query_chunk}, {"key_chunk", c.key_chunk}});
    REQUIRE(out.dtype() == dtype);
    testing::check_matches_reference(out, ref, dtype);
  }
}

TEST_CASE("memeff in sqrt chunking matches the reference", "[memeff][methods]") {
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const Problem p = testing::make_problem({1, 4, 2, 200, 333, 64, 64}, mask);
  const Inputs in = datasets::gaussian_inputs(p, 31);
  const Tensor ref = testing::run_method("reference", p, in);
  const Tensor out = testing::run_method("memeff", p, in, {{"query_chunk", 50}, {"chunking", "sqrt"}});
  CHECK(testing::relative_l2(out, ref) <= 1e-5);
}

TEST_CASE("memeff memory is bounded by its chunk sizes", "[memeff][methods]") {
  const double threads = omp_get_max_threads();
  SECTION("fixed chunks: the score chunk does not grow with the length") {
    const json chunks = {{"query_chunk", 64}, {"key_chunk", 128}};
    const Problem p1 = testing::make_problem({1, 2, 2, 1024, 1024, 64, 64}, "causal");
    const Problem p4 = testing::make_problem({1, 2, 2, 4096, 4096, 64, 64}, "causal");
    const std::int64_t peak1 = peak_of(p1, chunks), peak4 = peak_of(p4, chunks);
    INFO("peak " << peak1 << " -> " << peak4 << " bytes");
    CHECK(static_cast<double>(peak1) <= threads * chunk_bytes(p1, 64, 128) + 64 * 1024);
    CHECK(static_cast<double>(peak4) <= threads * chunk_bytes(p4, 64, 128) + 64 * 1024);
    // Far below a single head's 4096² score matrix (64 MiB).
    CHECK(peak4 < 4 * 1024 * 1024);
  }
  SECTION("sqrt chunking: memory grows like the square root of kv_len") {
    const json chunks = {{"query_chunk", 64}, {"chunking", "sqrt"}};
    const Problem small = testing::make_problem({1, 1, 1, 64, 4096, 32, 32}, "full");
    const Problem large = testing::make_problem({1, 1, 1, 64, 65536, 32, 32}, "full");
    const std::int64_t peak_small = peak_of(small, chunks), peak_large = peak_of(large, chunks);
    INFO("peak " << peak_small << " -> " << peak_large << " bytes for 16x the keys");
    CHECK(static_cast<double>(peak_small) <= chunk_bytes(small, 64, 64) + 64 * 1024);
    CHECK(static_cast<double>(peak_large) <= chunk_bytes(large, 64, 256) + 64 * 1024);
    CHECK(static_cast<double>(peak_large) / static_cast<double>(peak_small) < 4.5);
  }
}

TEST_CASE("memeff declares its parameters, FLOPs and refusals", "[memeff][methods]") {
  const Method& m = testing::method_named("memeff");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::exact);
  REQUIRE(info.params.size() == 3);
  CHECK(info.params[0].name == "query_chunk");
  CHECK(info.params[0].default_value == 1024);
  CHECK(info.params[1].name == "key_chunk");
  CHECK(info.params[1].default_value == 4096);
  CHECK(info.params[2].name == "chunking");
  CHECK(info.params[0].check(0).has_value());
  CHECK(info.params[1].check(0).has_value());
  CHECK(info.params[2].check("cubic").has_value());
  CHECK_FALSE(info.params[2].check("sqrt").has_value());

  const Problem p = testing::make_problem({1, 8, 8, 512, 512, 64, 64}, "causal");
  const Params params = complete_params(info.params, json::object());
  CHECK(m.flops(p, params) == Approx(4.0 * 8 * 512 * 512 * 64 / 2));
  CHECK(m.supports(p, params, Device{}));
  testing::check_shared_refusals(m, p, params, testing::make_problem({1, 1, 1, 8, 8, 64, 64}, "full", Dtype::f64));
}
