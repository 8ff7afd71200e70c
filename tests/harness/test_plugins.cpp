// Methods added without touching the harness: one defined in this test file, and one loaded with --plugin.
#include <catch2/catch.hpp>
#include <filesystem>

#include "attnbench/catalog.hpp"
#include "attnbench/method.hpp"
#include "attnbench/report.hpp"
#include "attnbench/runner.hpp"
#include "support/cli.hpp"

using namespace attnbench;

namespace {

// A method that exists only in this file: it copies V's first rows (wrong, but well defined).
struct CopyValuesPlan : Plan {
  void run(const Inputs& in, Tensor& out) override {
    const auto& s = out.shape();
    for (std::int64_t i = 0; i < out.numel(); ++i) {
      const std::int64_t c = i % s[3], row = (i / s[3]) % s[2];
      out.set(i, in.v.get(row * in.v.shape()[3] + c));
    }
  }
};
struct CopyValues : Method {
  MethodInfo info() const override {
    return {"test_copy_values",
            Family::low_rank,
            "defined in a test file only",
            "none",
            {ParamSpec::integer("unused", 3, 1, 9, "a declared parameter")}};
  }
  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (p.q_len > p.kv_len || p.batch != 1 || p.kv_heads != 1)
      return Support::no("needs one batch, one kv head and q_len <= kv_len");
    return Method::supports(p, params, d);
  }
  std::unique_ptr<Plan> plan(const Problem&, const Params&, const Device&) const override {
    return std::make_unique<CopyValuesPlan>();
  }
};
ATTNBENCH_REGISTER_METHOD(CopyValues);

}  // namespace

TEST_CASE("a method defined in a test file is listed, runs in a manifest and is reported", "[plugins]") {
  CHECK_THAT(list_methods(), Catch::Contains("test_copy_values [low-rank; backends: cpu]") &&
                                 Catch::Contains("unused: integer in [1, 9], default 3"));
  const auto dir = test::scratch_dir("inline-method");
  RunOptions ro;
  ro.output = (dir / "r.h5").string();
  const Manifest m =
      parse_manifest(R"({"name": "inline", "methods": [{"name": "test_copy_values", "axes": {"unused": [1, 2]}}],
    "timing": {"warmup": 0, "min_samples": 2, "max_time_s": 0.01},
    "tasks": [{"name": "synthetic", "params": {"heads": 1, "seq_len": 8, "head_dim": 4}}]})",
                     "inline.json");
  const RunSummary s = run_manifest(m, ro);
  CHECK(s.ok == 2);
  const std::string md = render_report({read_results(ro.output)}, ReportOptions{});
  CHECK_THAT(md, Catch::Contains("test_copy_values unused=1") && Catch::Contains("test_copy_values unused=2"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("attnbench --plugin loads a shared library whose methods register themselves", "[plugins][cli]") {
  const auto dir = test::scratch_dir("plugin");
  const std::string plugin = ATTNBENCH_EXAMPLE_PLUGIN;
  auto r = test::run_cli("list methods --plugin " + plugin, dir);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("my_method [exact; backends: cpu]"));
  // Without the plugin the name is unknown, and the error says which file and where.
  std::ofstream(dir / "suite.json")
      << R"({"name": "p", "seed": 4, "timing": {"warmup": 0, "min_samples": 2, "max_time_s": 0.02},
    "methods": [{"name": "my_method"}], "tasks": [{"name": "synthetic", "params": {"heads": 4, "kv_heads": 2, "seq_len": 19, "kv_len": 23, "head_dim": 8}, "axes": {"causal": [false, true]}}]})";
  r = test::run_cli("validate " + (dir / "suite.json").string(), dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("$.methods[0].name"));
  r = test::run_cli(
      "run " + (dir / "suite.json").string() + " --plugin " + plugin + " -q -o " + (dir / "p.h5").string(), dir);
  CHECK(r.code == 0);
  for (const auto& c : read_results((dir / "p.h5").string()).cells) {
    CHECK(c.status == "ok");
    CHECK(c.metrics.at(0).second < 1e-5);  // the example is exact attention
  }
  r = test::run_cli("list methods --plugin " + (dir / "nope.so").string(), dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("nope.so"));
  std::filesystem::remove_all(dir);
}
