// The runner: faults become failed records and the run goes on; resume keeps finished cells; the oracle scores.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <stdexcept>
#include <thread>

#include "attnbench/method.hpp"
#include "attnbench/results.hpp"
#include "attnbench/runner.hpp"
#include "support/cli.hpp"

using namespace attnbench;

namespace {

// Methods that misbehave on purpose, registered in the test binary only.
struct FaultPlan : Plan {
  std::string mode;
  explicit FaultPlan(std::string m) : mode(std::move(m)) {}
  void run(const Inputs&, Tensor& out) override {
    if (mode == "throw") throw std::runtime_error("deliberate failure");
    if (mode == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(60));
    if (mode == "lazy") return;  // writes nothing: the poisoned output must be caught
    for (std::int64_t i = 0; i < out.numel(); ++i) out.set(i, mode == "nan" ? std::nan("") : 0.0);
  }
};
struct FaultMethod : Method {
  MethodInfo info() const override {
    return {"test_fault",
            Family::exact,
            "misbehaves as its mode says",
            "",
            {ParamSpec::choice("mode", "throw", {"throw", "nan", "slow", "lazy", "zeros"}, "")}};
  }
  std::unique_ptr<Plan> plan(const Problem&, const Params& p, const Device&) const override {
    return std::make_unique<FaultPlan>(p.string("mode"));
  }
};
struct PickyMethod : Method {
  MethodInfo info() const override { return {"test_picky", Family::exact, "supports nothing causal", "", {}}; }
  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (p.causal()) return Support::no("test_picky has no causal variant");
    return Method::supports(p, params, d);
  }
  std::unique_ptr<Plan> plan(const Problem&, const Params&, const Device&) const override {
    return std::make_unique<FaultPlan>("zeros");
  }
};
ATTNBENCH_REGISTER_METHOD(FaultMethod);
ATTNBENCH_REGISTER_METHOD(PickyMethod);

const char* kFaults = R"({"name": "faults", "seed": 5, "baseline": "flash",
  "timing": {"warmup": 1, "min_samples": 3, "max_time_s": 0.05, "timeout_s": 0.1},
  "methods": [{"name": "flash"},
              {"name": "test_fault", "label": "throws", "params": {"mode": "throw"}},
              {"name": "test_fault", "label": "nan", "params": {"mode": "nan"}},
              {"name": "test_fault", "label": "slow", "params": {"mode": "slow"}},
              {"name": "test_fault", "label": "lazy", "params": {"mode": "lazy"}},
              {"name": "test_fault", "label": "wrong", "params": {"mode": "zeros"}},
              {"name": "test_picky"}],
  "tasks": [{"name": "synthetic", "params": {"heads": 2, "head_dim": 16, "seq_len": 40}, "axes": {"causal": [false, true]}}]})";

const CellRecord& cell(const ResultsFile& f, const std::string& label, bool causal) {
  for (const auto& c : f.cells)
    if (c.method == label && c.causal == causal) return c;
  throw std::logic_error("no cell " + label);
}

}  // namespace

TEST_CASE("faulty cells are recorded with their reason and the run goes on", "[runner]") {
  const auto dir = test::scratch_dir("faults");
  RunOptions ro;
  ro.output = (dir / "faults.h5").string();
  const RunSummary s = run_manifest(parse_manifest(kFaults, "faults.json"), ro);
  CHECK(s.total == 14);
  CHECK(s.ran == 14);
  const ResultsFile f = read_results(ro.output);
  REQUIRE(f.cells.size() == 14);
  CHECK(f.expected_cells == 14);
  for (bool causal : {false, true}) {
    const auto& ok = cell(f, "flash", causal);
    CHECK(ok.status == "ok");
    CHECK(ok.timing.samples >= 3);
    CHECK(ok.samples.size() == static_cast<std::size_t>(ok.timing.samples));
    CHECK(ok.metrics.at(0).first == "rel_l2");
    CHECK(ok.metrics.at(0).second < 1e-5);
    CHECK(cell(f, "throws", causal).status == "failed");
    CHECK_THAT(cell(f, "throws", causal).reason, Catch::Contains("deliberate failure"));
    CHECK(cell(f, "nan", causal).status == "failed");
    CHECK_THAT(cell(f, "nan", causal).reason, Catch::Contains("NaN"));
    CHECK(cell(f, "slow", causal).status == "failed");
    CHECK_THAT(cell(f, "slow", causal).reason, Catch::StartsWith("timeout"));
    CHECK(cell(f, "lazy", causal).status == "failed");  // never wrote its output
    // A method that runs but is wrong is "ok" as a run, and its fidelity says how wrong.
    CHECK(cell(f, "wrong", causal).status == "ok");
    CHECK(cell(f, "wrong", causal).metrics.at(0).second == Approx(1.0));
  }
  CHECK(cell(f, "test_picky", false).status == "ok");
  CHECK(cell(f, "test_picky", true).status == "unsupported");
  CHECK(cell(f, "test_picky", true).reason == "test_picky has no causal variant");
  std::filesystem::remove_all(dir);
}

TEST_CASE("resume keeps finished cells and runs only the rest", "[runner]") {
  const auto dir = test::scratch_dir("resume-lib");
  const Manifest m = parse_manifest(kFaults, "faults.json");
  RunOptions ro;
  ro.output = (dir / "r.h5").string();
  run_manifest(m, ro);
  ResultsFile full = read_results(ro.output);
  // Drop the last five cells, as an interrupted run would have left the file.
  ResultsFile partial = full;
  partial.cells.resize(9);
  write_results(ro.output, partial);
  ro.resume = true;
  const RunSummary s = run_manifest(m, ro);
  CHECK(s.skipped_done == 9);
  CHECK(s.ran == 5);
  const ResultsFile after = read_results(ro.output);
  REQUIRE(after.cells.size() == 14);
  for (std::size_t i = 0; i < 9; ++i) {
    CHECK(after.cells[i].id == partial.cells[i].id);
    CHECK(after.cells[i].started_unix == partial.cells[i].started_unix);  // not redone
  }
  std::set<std::int64_t> indices;
  for (const auto& c : after.cells) indices.insert(c.index);
  CHECK(indices.size() == 14);
  // Resuming a finished file runs nothing.
  CHECK(run_manifest(m, ro).ran == 0);
  // Resuming with another manifest is refused.
  std::string other = kFaults;
  other.replace(other.find("\"seed\": 5"), 9, "\"seed\": 6");
  CHECK_THROWS_AS(run_manifest(parse_manifest(other, "other.json"), ro), ResultsError);
  std::filesystem::remove_all(dir);
}
