// The attnbench CLI end to end: help, validate, list, run on suites/smoke.json, report, bad input, kill -9 + resume.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "attnbench/device.hpp"
#include "attnbench/results.hpp"
#include "support/cli.hpp"

using namespace attnbench;
using test::run_cli;

TEST_CASE("every subcommand has --help and exits 0", "[cli]") {
  const auto dir = test::scratch_dir("help");
  for (const char* cmd : {"run", "validate", "list", "report", "merge", "compare", "env"}) {
    const auto r = run_cli(std::string(cmd) + " --help", dir);
    INFO(cmd);
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::StartsWith(std::string("usage: attnbench ") + cmd));
  }
  CHECK(run_cli("--help", dir).code == 0);
  CHECK(run_cli("frobnicate", dir).code == 2);
  CHECK(run_cli("run --no-such-flag suites/smoke.json", dir).code == 2);
  std::filesystem::remove_all(dir);
}

TEST_CASE("validate counts cells and refuses bad manifests with exit 2", "[cli]") {
  const auto dir = test::scratch_dir("validate");
  auto r = run_cli("validate suites/smoke.json", dir);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("suites/smoke.json: valid; 10 cells"));
  std::ofstream(dir / "bad.json")
      << R"({"name": "x", "methods": [{"name": "flash", "axes": {"block_k": [8]}}], "tasks": [{"name": "synthetic"}]})";
  r = run_cli("validate " + (dir / "bad.json").string(), dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains((dir / "bad.json").string() +
                                    ": $.methods[0].axes.block_k[0]: expected integer in [16, 1024], got 8"));
  CHECK(run_cli("validate " + (dir / "missing.json").string(), dir).code == 2);
  std::filesystem::remove_all(dir);
}

TEST_CASE("list shows methods, tasks and masks with their parameters", "[cli]") {
  const auto dir = test::scratch_dir("list");
  auto r = run_cli("list methods", dir);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("flash [exact; backends: cpu"));
  CHECK_THAT(r.out, Catch::Contains("dense [exact"));
  CHECK_THAT(r.out, Catch::Contains("reference [exact"));
  CHECK_THAT(r.out, Catch::Contains("block_k: integer in [16, 1024], default 128"));
  r = run_cli("list tasks", dir);
  CHECK_THAT(r.out, Catch::Contains("synthetic [efficiency]"));
  CHECK_THAT(r.out, Catch::Contains("metrics: rel_l2, max_abs"));
  r = run_cli("list masks", dir);
  CHECK_THAT(r.out, Catch::Contains("causal"));
  CHECK(run_cli("list widgets", dir).code == 2);
  std::filesystem::remove_all(dir);
}

TEST_CASE("run on the smoke suite writes results, prints a table, report regenerates it", "[cli]") {
  const auto dir = test::scratch_dir("run");
  const std::string h5 = (dir / "smoke.h5").string();
  auto r = run_cli("run suites/smoke.json -o " + h5 + " --threads 2", dir);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("[1/10] dense"));
  CHECK_THAT(r.err, Catch::Contains("[10/10] flash"));
  CHECK_THAT(r.out, Catch::Contains("| method"));
  CHECK_THAT(r.out, Catch::Contains("results: " + h5));
  CHECK_THAT(r.out, Catch::Contains("10 cells: 10 ok"));
  const ResultsFile f = read_results(h5);
  CHECK(f.cells.size() == 10);
  for (const auto& c : f.cells) {
    CHECK(c.status == "ok");
    CHECK(c.threads == 2);
    const double tol = c.dtype == "bf16" ? 1e-2 : 1e-5;
    CHECK(c.metrics.at(0).second < tol);
  }
  const json env = json::parse(f.environment);
  for (const char* key :
       {"cpu_model", "logical_cores", "os", "compiler", "cxx_flags", "build_type", "git_revision", "libraries", "seed"})
    CHECK(env.contains(key));

  // The same file gives the same bytes, in every format.
  for (const char* fmt : {"md", "latex", "csv"}) {
    const auto a = run_cli("report " + h5 + " --format " + fmt, dir);
    const auto b = run_cli("report " + h5 + " --format " + fmt + " -o " + (dir / "out.txt").string(), dir);
    CHECK(a.code == 0);
    CHECK(b.code == 0);
    CHECK(a.out == test::slurp(dir / "out.txt"));
  }
  CHECK(run_cli("report " + h5 + " --metric rel_l2", dir).code == 0);
  CHECK(run_cli("report " + h5 + " --metric no_such_metric", dir).code == 2);
  CHECK(run_cli("report " + h5 + " --format docx", dir).code == 2);

  // An existing file is not overwritten by accident.
  r = run_cli("run suites/smoke.json -o " + h5, dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--resume"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("report refuses unreadable and foreign files with exit 2", "[cli]") {
  const auto dir = test::scratch_dir("foreign");
  auto r = run_cli("report " + (dir / "missing.h5").string(), dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("missing.h5"));
  r = run_cli("report suites/smoke.json", dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("suites/smoke.json"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("device cuda without a GPU says so in one line and exits 2, auto falls back", "[cli]") {
  const auto dir = test::scratch_dir("device");
  std::string why;
  if (cuda_device_count(&why) > 0) {
    WARN("skipped: a CUDA device is present, so the no-device path cannot be tested here");
    return;
  }
  auto r = run_cli("run suites/smoke.json --device cuda -o " + (dir / "x.h5").string(), dir);
  CHECK(r.code == 2);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK_THAT(r.err, Catch::Contains("--device cuda"));
  r = run_cli("run suites/smoke.json --device auto -q -o " + (dir / "auto.h5").string(), dir);
  CHECK(r.code == 0);
  const json env = json::parse(read_results((dir / "auto.h5").string()).environment);
  CHECK_THAT(env.value("device_note", std::string()), Catch::Contains("ran on cpu"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("kill -9 mid-run leaves a readable file and --resume finishes without redoing cells", "[cli][resume]") {
  const auto dir = test::scratch_dir("kill");
  const std::string manifest = (dir / "slow.json").string(), h5 = (dir / "slow.h5").string();
  std::ofstream(manifest) << R"({"name": "slow", "seed": 2,
    "timing": {"warmup": 1, "min_samples": 3, "max_noise": 1e-6, "max_time_s": 0.25},
    "methods": [{"name": "flash"}, {"name": "dense"}],
    "tasks": [{"name": "synthetic", "params": {"heads": 2, "head_dim": 32}, "axes": {"seq_len": [64, 96, 128, 160, 192, 224]}}]})";
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    execl(ATTNBENCH_CLI, ATTNBENCH_CLI, "run", manifest.c_str(), "-o", h5.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until a few cells are in the file, then kill without warning.
  std::size_t seen = 0;
  for (int i = 0; i < 400 && seen < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    try {
      seen = read_results(h5).cells.size();
    } catch (const ResultsError&) {
    }
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  const ResultsFile before = read_results(h5);  // readable after kill -9
  REQUIRE(before.cells.size() >= 3);
  REQUIRE(before.cells.size() < 12);
  const auto r = run_cli("run " + manifest + " -o " + h5 + " --resume", dir);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains(std::to_string(before.cells.size()) + " kept from before"));
  const ResultsFile after = read_results(h5);
  REQUIRE(after.cells.size() == 12);
  for (std::size_t i = 0; i < before.cells.size(); ++i) {
    CHECK(after.cells[i].id == before.cells[i].id);
    CHECK(after.cells[i].started_unix == before.cells[i].started_unix);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("run on a suite of suites writes one file per suite into the -o folder and resumes", "[cli]") {
  const auto dir = test::scratch_dir("include");
  std::ofstream(dir / "one.json") << R"({"name": "one", "timing": {"warmup": 0, "min_samples": 2, "max_time_s": 0.01},
    "methods": [{"name": "flash"}], "tasks": [{"name": "synthetic", "params": {"heads": 2, "seq_len": 16, "head_dim": 8}}]})";
  std::ofstream(dir / "two.json") << R"({"name": "two", "timing": {"warmup": 0, "min_samples": 2, "max_time_s": 0.01},
    "methods": [{"name": "dense"}, {"name": "flash"}], "tasks": [{"name": "synthetic", "params": {"heads": 1, "seq_len": 8, "head_dim": 4}}]})";
  std::ofstream(dir / "all.json") << R"({"name": "all", "include": ["one.json", "two.json"]})";
  const std::string out = (dir / "out").string();
  auto r = run_cli("validate " + (dir / "all.json").string(), dir);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("a suite of 2 suites, 3 cells in all"));
  r = run_cli("run " + (dir / "all.json").string() + " -o " + out, dir);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("3 cells: 3 ok"));
  CHECK_THAT(r.out, Catch::Contains("results: " + out + "/one.h5 " + out + "/two.h5"));
  CHECK(read_results(out + "/one.h5").cells.size() == 1);
  CHECK(read_results(out + "/two.h5").cells.size() == 2);
  CHECK(run_cli("run " + (dir / "all.json").string() + " -o " + out, dir).code == 2);  // files exist
  r = run_cli("run " + (dir / "all.json").string() + " -o " + out + " --resume", dir);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("0 run now, 3 kept from before"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("compare: two runs cell by cell; --strict exits 1 over the threshold, no common cell exits 2", "[cli][compare]") {
  const auto dir = test::scratch_dir("compare");
  const std::string manifest = (dir / "tiny.json").string(), other = (dir / "other.json").string();
  std::ofstream(manifest) << R"({"name": "tiny", "seed": 2, "timing": {"warmup": 1, "min_samples": 5, "max_time_s": 0.02},
    "methods": [{"name": "flash"}], "tasks": [{"name": "synthetic", "params": {"heads": 2, "head_dim": 16}, "axes": {"seq_len": [32, 48]}}]})";
  std::ofstream(other) << R"({"name": "other", "seed": 2, "timing": {"warmup": 1, "min_samples": 5, "max_time_s": 0.02},
    "methods": [{"name": "dense"}], "tasks": [{"name": "synthetic", "params": {"heads": 2, "head_dim": 16, "seq_len": 32}}]})";
  const std::string a = (dir / "a.h5").string(), b = (dir / "b.h5").string(), c = (dir / "c.h5").string();
  REQUIRE(run_cli("run " + manifest + " -q -o " + a, dir).code == 0);
  REQUIRE(run_cli("run " + manifest + " -q -o " + b, dir).code == 0);
  REQUIRE(run_cli("run " + other + " -q -o " + c, dir).code == 0);

  auto r = run_cli("compare " + a + " " + b, dir);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("2 cells in both, 2 with timings") && Catch::Contains("one build"));
  CHECK(run_cli("compare " + a + " " + a + " --threshold 0 --strict", dir).code == 0);  // identical: B/A − 1 = 0
  CHECK(run_cli("compare " + a + " " + b + " --threshold 0 --strict", dir).code == 1);
  CHECK(run_cli("compare " + a + " " + b + " --threshold 10 --strict", dir).code == 0);
  r = run_cli("compare " + a + " " + b + " --format csv", dir);
  CHECK_THAT(r.out, Catch::StartsWith("method,task,shape,a_latency_ms,b_latency_ms,delta,p_value,verdict\n"));
  r = run_cli("compare " + a + " " + c, dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("no cell in common"));
  std::filesystem::remove_all(dir);
}
