// The watchdog for cells that never return: the class on its own, timing.hang_s in manifests, and the CLI
// end to end with a plugin whose plan or run hangs (tests/plugins/hang_method.cpp).
#include "attnbench/watchdog.hpp"

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "attnbench/manifest.hpp"
#include "attnbench/results.hpp"
#include "support/cli.hpp"

using namespace attnbench;
using namespace std::chrono_literals;

namespace {

bool wait_for(const std::atomic<int>& flag, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (flag.load() == 0 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(1ms);
  return flag.load() != 0;
}

// `attnbench run` of a manifest with the hang plugin loaded: its result, how long it took, and how many
// times the CLI restarted itself past a hang.
struct HangRun {
  test::CliResult result;
  double seconds = 0;
  std::size_t restarts = 0;
};
HangRun run_with_hang_plugin(const std::string& args, const std::filesystem::path& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  HangRun h{test::run_cli(args + " --plugin " + ATTNBENCH_HANG_PLUGIN, dir), 0, 0};
  h.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string& err = h.result.err;
  for (std::size_t at = 0; (at = err.find("restarting with --resume", at)) != std::string::npos; ++at) ++h.restarts;
  return h;
}

}  // namespace

TEST_CASE("the watchdog fires after its deadline, not before, and not once disarmed", "[watchdog]") {
  Watchdog w;
  std::atomic<int> fired{0};
  SECTION("fires") {
    const auto t0 = std::chrono::steady_clock::now();
    std::atomic<double> at{0};
    w.arm(0.05, [&] {
      at = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fired = 1;
    });
    REQUIRE(wait_for(fired, 5000ms));
    CHECK(at.load() >= 0.05);
    CHECK_FALSE(w.armed());  // once: the action ran, the watchdog is disarmed
  }
  SECTION("disarmed in time, it stays quiet") {
    w.arm(0.5, [&] { fired = 1; });
    std::this_thread::sleep_for(10ms);
    w.disarm();
    std::this_thread::sleep_for(700ms);  // past the deadline it had
    CHECK(fired.load() == 0);
  }
  SECTION("re-arming replaces the deadline and the action") {
    std::atomic<int> second{0};
    w.arm(0.1, [&] { fired = 1; });
    w.arm(0.3, [&] { second = 1; });
    std::this_thread::sleep_for(200ms);
    CHECK(fired.load() == 0);
    REQUIRE(wait_for(second, 5000ms));
    CHECK(fired.load() == 0);
  }
  SECTION("a pause stops the clock") {
    w.arm(0.5, [&] { fired = 1; });
    {
      const WatchdogPause p(&w);
      std::this_thread::sleep_for(800ms);  // well past the deadline, but paused
      CHECK(fired.load() == 0);
    }
    REQUIRE(wait_for(fired, 5000ms));
  }
  SECTION("disarm waits for an action that is running") {
    std::atomic<int> done{0};
    w.arm(0.01, [&] {
      fired = 1;
      std::this_thread::sleep_for(150ms);
      done = 1;
    });
    REQUIRE(wait_for(fired, 5000ms));
    w.disarm();
    CHECK(done.load() == 1);
  }
}

TEST_CASE("timing.hang_s: 2 x timeout_s + 60 unless set, and above timeout_s", "[watchdog][manifest]") {
  auto manifest = [](const std::string& timing) {
    return R"({"name": "t", "seed": 1, "timing": )" + timing +
           R"(, "methods": [{"name": "flash"}], "tasks": [{"name": "synthetic"}]})";
  };
  CHECK(parse_manifest(manifest("{}"), "m.json").timing.hang_s == 300.0);
  CHECK(parse_manifest(manifest(R"({"timeout_s": 10})"), "m.json").timing.hang_s == 80.0);
  CHECK(parse_manifest(manifest(R"({"timeout_s": 10, "hang_s": 11})"), "m.json").timing.hang_s == 11.0);
  try {
    parse_manifest(manifest(R"({"timeout_s": 10, "hang_s": 5})"), "m.json");
    FAIL("hang_s under timeout_s was accepted");
  } catch (const ManifestError& e) {
    CHECK(e.json_path() == "$.timing.hang_s");
    CHECK_THAT(e.expected(), Catch::Contains("above timeout_s"));
  }
}

TEST_CASE("a cell that never returns is recorded as hung and the run goes on past it", "[watchdog][cli]") {
  const auto dir = test::scratch_dir("hang");
  const std::string manifest = (dir / "hang.json").string(), h5 = (dir / "hang.h5").string();
  std::ofstream(manifest) << R"({"name": "hang", "seed": 3,
    "timing": {"warmup": 1, "min_samples": 3, "max_noise": 0.05, "max_time_s": 0.02, "timeout_s": 0.5, "hang_s": 1},
    "methods": [{"name": "flash"},
                {"name": "test_hang", "label": "plan_hangs", "params": {"hang": 1}},
                {"name": "test_hang", "label": "run_hangs", "params": {"hang": 2}},
                {"name": "test_hang", "label": "returns", "params": {"hang": 0}}],
    "tasks": [{"name": "synthetic", "params": {"heads": 2, "head_dim": 32}, "axes": {"seq_len": [24, 48]}}]})";
  const HangRun run = run_with_hang_plugin("run " + manifest + " -o " + h5 + " --strict", dir);
  const auto& r = run.result;
  INFO(r.err);
  CHECK(r.code == 1);  // --strict: the file holds failed cells, whichever process ran them
  CHECK_THAT(r.out, Catch::Contains("8 cells: 4 ok, 4 failed, 0 unsupported"));
  CHECK(run.seconds < 60);
  CHECK(run.restarts == 4);

  const ResultsFile f = read_results(h5);
  REQUIRE(f.cells.size() == 8);
  std::set<std::string> ids;
  for (const CellRecord& c : f.cells) {
    INFO(c.id << ": " << c.reason);
    ids.insert(c.id);
    CHECK(c.q_len > 0);  // the hung cell's record has its shape too
    if (c.method == "plan_hangs" || c.method == "run_hangs") {
      CHECK(c.status == "failed");
      CHECK_THAT(c.reason, Catch::StartsWith("hung: the method had not returned after 1 s (timing.hang_s)"));
      CHECK(c.wall_s >= 1.0);
      CHECK(c.samples.empty());
    } else {
      CHECK(c.status == "ok");
      REQUIRE_FALSE(c.metrics.empty());
      CHECK(c.metrics.at(0).first == "rel_l2");
      CHECK(c.metrics.at(0).second < 1e-5);
    }
  }
  CHECK(ids.size() == 8);  // no cell ran twice
  CHECK_FALSE(std::filesystem::exists(h5 + ".tmp"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a task instance that is never built takes down its cells at once, and the run goes on", "[watchdog][cli]") {
  const auto dir = test::scratch_dir("hang-task");
  const std::string manifest = (dir / "hang.json").string(), h5 = (dir / "hang.h5").string();
  // Two methods × two instances: the one with hang = 1 never builds; its two cells are recorded at once
  // (one restart, not two) and the other instance's cells run.
  std::ofstream(manifest) << R"({"name": "hang-task", "seed": 3,
    "timing": {"warmup": 1, "min_samples": 3, "max_noise": 0.05, "max_time_s": 0.02, "timeout_s": 0.5, "hang_s": 1},
    "methods": [{"name": "flash"}, {"name": "dense"}],
    "tasks": [{"name": "test_hang_task", "params": {"heads": 2, "head_dim": 32, "seq_len": 24}, "axes": {"hang": [1, 0]}}]})";
  const HangRun run = run_with_hang_plugin("run " + manifest + " -o " + h5, dir);
  const auto& r = run.result;
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("4 cells: 2 ok, 2 failed, 0 unsupported"));
  CHECK(run.seconds < 60);
  CHECK(run.restarts == 1);

  const ResultsFile f = read_results(h5);
  REQUIRE(f.cells.size() == 4);
  std::set<std::string> ids;
  for (const CellRecord& c : f.cells) {
    INFO(c.id << ": " << c.task_params << ": " << c.reason);
    ids.insert(c.id);
    CHECK(c.q_len == 24);  // the shape comes from the task's parameters, without the instance
    if (c.task_params.find("\"hang\":1") != std::string::npos) {
      CHECK(c.status == "failed");
      CHECK_THAT(c.reason, Catch::StartsWith("hung: the task had not built its instance after 1 s (timing.hang_s); "
                                             "the process was restarted past these cells"));
      CHECK(c.samples.empty());
    } else {
      CHECK(c.status == "ok");
    }
  }
  CHECK(ids.size() == 4);
  std::filesystem::remove_all(dir);
}
