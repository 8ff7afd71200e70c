// The CUDA backend on a machine without a GPU: registered, says why there is no device, `--device cuda`
// refused in one line, `--device auto` falls back; NVML's absence, the throttle rule, the hot batch size;
// suites/gpu.json; baselines/external/torch_sdpa.py without torch, and its schema self-test file.
#ifdef ATTNBENCH_HAVE_CUDA
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "attnbench/backend.hpp"
#include "attnbench/device.hpp"
#include "attnbench/manifest.hpp"
#include "attnbench/method.hpp"
#include "attnbench/results.hpp"
#include "harness/cuda/cuda_backend.hpp"
#include "harness/cuda/nvml.hpp"
#include "support/cli.hpp"

using namespace attnbench;
using test::run_cli;
namespace fs = std::filesystem;

namespace {

bool has_gpu() {
  std::string why;
  return cuda_device_count(&why) > 0;
}

// /usr/bin/python3, as in the results tests: the system interpreter is the one python3-h5py installs into.
bool python_can_import(const std::string& modules) {
  return std::system(("/usr/bin/python3 -c \"import " + modules + "\" >/dev/null 2>&1").c_str()) == 0;
}

std::string torch_script() { return test::source_path("baselines/external/torch_sdpa.py"); }

// The shape of the schema self-test's one cell (torch_sdpa.py: SELFTEST_SHAPE).
const char* kSelftestManifest = R"({"name": "selftest_twin", "seed": 3,
  "timing": {"warmup": 0, "min_samples": 2, "max_noise": 0.5, "max_time_s": 0.05},
  "methods": [{"name": "dense"}],
  "tasks": [{"name": "synthetic", "params": {"batch": 1, "heads": 2, "seq_len": 128, "head_dim": 64, "dtype": "bf16"}}]})";

}  // namespace

TEST_CASE("cuda backend: registered in a build with CUDA", "[cuda_backend]") {
  DeviceBackend* b = device_backend(Device::Kind::cuda);
  REQUIRE(b != nullptr);
  CHECK(dynamic_cast<cuda::CudaBackend*>(b) != nullptr);
}

TEST_CASE("cuda backend: without a device, device_count is 0 with the driver's reason", "[cuda_backend]") {
  if (has_gpu()) {
    WARN("skipped: a CUDA device is present, so the no-device path cannot be tested here");
    return;
  }
  std::string driver_why, why;
  cuda_device_count(&driver_why);
  DeviceBackend* b = device_backend(Device::Kind::cuda);
  REQUIRE(b != nullptr);
  CHECK(b->device_count(&why) == 0);
  CHECK_FALSE(why.empty());
  CHECK(why == driver_why);  // e.g. "no CUDA driver (libcuda.so.1 not found)"
  CHECK_THAT(why, Catch::Contains("CUDA"));
}

TEST_CASE("cuda backend: run --device cuda without a GPU exits 2 with one line, auto falls back to cpu",
          "[cuda_backend][cli]") {
  if (has_gpu()) {
    WARN("skipped: a CUDA device is present, so the no-device path cannot be tested here");
    return;
  }
  const auto dir = test::scratch_dir("cuda-backend-device");
  std::string why;
  cuda_device_count(&why);
  auto r = run_cli("run suites/quick.json --device cuda -o " + (dir / "x.h5").string(), dir);
  CHECK(r.code == 2);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK_THAT(r.err, Catch::Contains("--device cuda") && Catch::Contains(why));
  CHECK(r.out.empty());
  CHECK_FALSE(fs::exists(dir / "x.h5"));

  const std::string manifest = (dir / "one.json").string();
  std::ofstream(manifest) << kSelftestManifest;
  r = run_cli("run " + manifest + " --device auto -q -o " + (dir / "auto.h5").string(), dir);
  INFO(r.err);
  REQUIRE(r.code == 0);
  const ResultsFile f = read_results((dir / "auto.h5").string());
  const json env = json::parse(f.environment);
  CHECK(env.value("device", std::string()) == "cpu");
  CHECK_THAT(env.value("device_note", std::string()), Catch::Contains("ran on cpu") && Catch::Contains(why));
  CHECK_FALSE(env.contains("device_info"));
  REQUIRE(f.cells.size() == 1);
  CHECK(f.cells[0].device == "cpu");
  CHECK(f.cells[0].status == "ok");
  fs::remove_all(dir);
}

TEST_CASE("NVML wrapper: a missing library is reported cleanly, every read is empty", "[cuda_backend][nvml]") {
  const std::string missing = "libnvidia-ml-attnbench-missing.so.1";
  const cuda::Nvml n(missing);
  CHECK_FALSE(n.available());
  CHECK_THAT(n.why(), Catch::StartsWith("NVML not found") && Catch::Contains(missing));
  std::string why;
  CHECK_FALSE(n.device_by_pci_bus_id("00000000:01:00.0", &why).has_value());
  CHECK(why == n.why());
  CHECK(n.driver_version().empty());
  CHECK(n.nvml_version().empty());
  CHECK_FALSE(n.clock_mhz(nullptr, cuda::Clock::sm).has_value());
  CHECK_FALSE(n.power_w(nullptr).has_value());
  CHECK_FALSE(n.clock_event_reasons(nullptr).has_value());
  CHECK(n.state(nullptr).empty());
}

TEST_CASE("NVML wrapper: a library that is not NVML is refused with a reason", "[cuda_backend][nvml]") {
  const cuda::Nvml n("libm.so.6");  // loads, but has none of NVML's symbols
  CHECK_FALSE(n.available());
  CHECK_THAT(n.why(), Catch::Contains("libm.so.6") && Catch::Contains("lacks nvmlInit"));
}

TEST_CASE("NVML wrapper: the process's NVML is present with a driver and says why not without",
          "[cuda_backend][nvml]") {
  const cuda::Nvml& n = cuda::nvml();
  if (n.available()) {
    CHECK(n.why().empty());
    CHECK_FALSE(n.driver_version().empty());
  } else {
    CHECK_THAT(n.why(), Catch::Contains("NVML"));
    if (!has_gpu()) CHECK_THAT(n.why(), Catch::Contains("libnvidia-ml.so.1"));
  }
}

TEST_CASE("throttle rule: a sample counts only at 75% or more of the reference SM clock", "[cuda_backend]") {
  using cuda::clock_ok;
  CHECK(clock_ok(1755, 1755));
  CHECK(clock_ok(1980, 1755));        // boost above the default clock
  CHECK(clock_ok(1317, 1755));        // 75.04%
  CHECK_FALSE(clock_ok(1316, 1755));  // 74.98%
  CHECK(clock_ok(750, 1000));         // exactly 75%
  CHECK_FALSE(clock_ok(749, 1000));
  CHECK_FALSE(clock_ok(0, 1000));
  CHECK_FALSE(clock_ok(345, 1410));           // an A100 idling at 345 MHz against its 1410 MHz default
  CHECK(clock_ok(100, 0));                    // reference unknown: nothing to judge
  CHECK(clock_ok(4294967295u, 4294967295u));  // no overflow at the top of the range
  CHECK_FALSE(clock_ok(3221225471u, 4294967295u));
  static_assert(clock_ok(3, 4) && !clock_ok(2, 4));

  using cuda::reference_sm_clock;
  CHECK(reference_sm_clock(1755u, 1980u) == 1755);  // default applications clock first
  CHECK(reference_sm_clock(std::nullopt, 1980u) == 1980);
  CHECK(reference_sm_clock(0u, 1980u) == 1980);
  CHECK(reference_sm_clock(std::nullopt, std::nullopt) == 0);
}

TEST_CASE("hot batch size: enough runs for about a millisecond, within [1, 1000]", "[cuda_backend]") {
  using cuda::hot_batch_size;
  CHECK(hot_batch_size(5e-3) == 1);
  CHECK(hot_batch_size(1e-3) == 1);
  CHECK(hot_batch_size(3e-4) == 4);  // ceil(3.33)
  CHECK(hot_batch_size(1e-5) == 100);
  CHECK(hot_batch_size(1e-8) == cuda::kMaxBatch);
  CHECK(hot_batch_size(0) == cuda::kMaxBatch);
}

TEST_CASE("suites/gpu.json: the issue's shapes in bf16 with a cold L2, valid where its methods are built",
          "[cuda_backend][suites]") {
  const std::string path = test::source_path("suites/gpu.json");
  const json j = json::parse(test::slurp(path));
  std::set<std::string> methods, labels;
  for (const auto& m : j.at("methods")) {
    methods.insert(m.at("name").get<std::string>());
    labels.insert(m.value("label", m.at("name").get<std::string>()));
  }
  CHECK(methods == std::set<std::string>{"flash", "flash_sync", "cublas", "dense"});
  // flash at 64-query tiles beside its default 128 (head dims <= 128), measured in the same run
  CHECK(labels == std::set<std::string>{"flash", "flash_q64", "flash_sync", "cublas", "dense"});
  CHECK(j.at("timing").at("cold_cache").get<bool>());
  CHECK_FALSE(j.at("timing").contains("max_noise"));  // the GPU default, 0.5%
  CHECK(j.value("device", std::string()) == "cuda");
  std::set<long> lengths, dims;
  for (const auto& t : j.at("tasks")) {
    CHECK(t.at("name") == "synthetic");
    CHECK(t.at("params").at("dtype") == "bf16");
    CHECK(t.at("axes").at("causal") == json::array({false, true}));
    const long L = t.at("params").at("seq_len"), D = t.at("params").at("head_dim");
    lengths.insert(L);
    dims.insert(D);
    // FlashAttention's benchmark shapes: 16K tokens per batch, 2048 = heads × head_dim
    CHECK(t.at("params").at("batch").get<long>() * L == std::max(16384L, L));
    CHECK(t.at("params").at("heads").get<long>() * D == 2048);
  }
  CHECK(lengths == std::set<long>{1024, 2048, 4096, 8192, 16384, 32768});
  CHECK(dims == std::set<long>{64, 128});

  std::string missing;
  for (const auto& m : methods)
    if (!MethodRegistry::instance().find(m)) missing += " " + m;
  if (!missing.empty()) {
    WARN("suites/gpu.json not validated: methods not in this build:" << missing);
    return;
  }
  const Manifest m = load_manifest(path);
  CHECK(expand(m).size() == 120);  // 12 shapes × causal or not × 5 methods
  CHECK(m.timing.cold_cache);
  CHECK_FALSE(m.timing.max_noise_given);
}

TEST_CASE("torch_sdpa.py: without PyTorch it fails with a clear message", "[cuda_backend][torch]") {
  if (python_can_import("torch")) {
    WARN("skipped: PyTorch is installed here, so its absence cannot be tested");
    return;
  }
  const auto dir = test::scratch_dir("torch-absent");
  const std::string cmd = "/usr/bin/python3 '" + torch_script() + "' -o '" + (dir / "t.h5").string() + "' >'" +
                          (dir / "out").string() + "' 2>'" + (dir / "err").string() + "'";
  const int status = std::system(cmd.c_str());
  const std::string err = test::slurp(dir / "err");
  INFO(err);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  CHECK_THAT(err, Catch::Contains("PyTorch") && Catch::Contains("not installed"));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK_FALSE(fs::exists(dir / "t.h5"));
  fs::remove_all(dir);
}

TEST_CASE("torch_sdpa.py --selftest-schema: attnbench reads its file and reports it beside its own",
          "[cuda_backend][torch]") {
  if (!python_can_import("h5py, numpy")) {
    WARN("skipped: python3-h5py not installed");
    return;
  }
  const auto dir = test::scratch_dir("torch-schema");
  const std::string theirs = (dir / "schema.h5").string(), ours = (dir / "ours.h5").string();
  const std::string cmd = "/usr/bin/python3 '" + torch_script() + "' --selftest-schema '" + theirs + "' >'" +
                          (dir / "out").string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  INFO(test::slurp(dir / "out"));
  REQUIRE(rc == 0);

  // Read back by the C++ reader: every column and attribute present, the numbers labelled as a test.
  const ResultsFile f = read_results(theirs);
  CHECK(f.schema_version == kSchemaVersion);
  CHECK_THAT(f.manifest_name, Catch::Contains("schema_selftest"));
  CHECK(f.expected_cells == 1);
  const json env = json::parse(f.environment);
  CHECK(env.value("schema_selftest", false));
  CHECK_THAT(env.value("note", std::string()), Catch::Contains("not a measurement"));
  REQUIRE(f.cells.size() == 1);
  const CellRecord& c = f.cells[0];
  CHECK_THAT(c.method, Catch::Contains("schema_test"));
  CHECK(c.status == "ok");
  CHECK(c.task == "synthetic");
  CHECK(c.dtype == "bf16");
  CHECK(c.batch == 1);
  CHECK(c.heads == 2);
  CHECK(c.q_len == 128);
  CHECK(c.head_dim == 64);
  CHECK(c.samples.size() == static_cast<std::size_t>(c.timing.samples));
  CHECK(c.timing.samples >= 2);
  CHECK(c.timing.median_s > 0);
  CHECK(c.timing.stop_reason == "noise");
  CHECK(c.id == c.method + c.method_params + "|" + c.task + c.task_params);
  std::set<std::string> metric_names;
  for (const auto& [name, value] : c.metrics) metric_names.insert(name);
  CHECK(metric_names.count("rel_l2"));
  CHECK(metric_names.count("discarded_samples"));
  CHECK(metric_names.count("device.sm_clock_mhz.before"));

  // Our own run of the same shape: its task parameters must be the same text, so that a report pivots
  // both files' cells into one column.
  std::ofstream(dir / "twin.json") << kSelftestManifest;
  auto r = run_cli("run " + (dir / "twin.json").string() + " -q -o " + ours, dir);
  REQUIRE(r.code == 0);
  const ResultsFile o = read_results(ours);
  REQUIRE(o.cells.size() == 1);
  CHECK(o.cells[0].task_params == c.task_params);

  r = run_cli("report " + ours + " " + theirs, dir);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("dense") && Catch::Contains(c.method));
  r = run_cli("report " + ours + " " + theirs + " --metric latency_ms --format csv", dir);
  INFO(r.out);
  REQUIRE(r.code == 0);
  // One header line, one row per file's method; both rows have a number in the one shape column.
  std::vector<std::string> lines;
  for (std::size_t a = 0, b; (b = r.out.find('\n', a)) != std::string::npos; a = b + 1)
    lines.push_back(r.out.substr(a, b - a));
  REQUIRE(lines.size() >= 3);
  const auto columns = [](const std::string& line) { return std::count(line.begin(), line.end(), ',') + 1; };
  const std::string header = lines[0];
  int rows_with_method = 0;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].find("dense") == std::string::npos && lines[i].find(c.method) == std::string::npos) continue;
    ++rows_with_method;
    CHECK(columns(lines[i]) == columns(header));
    CHECK(lines[i].back() != ',');  // a latency in the last (the only shape) column
  }
  CHECK(rows_with_method == 2);

  // Speedups of our file's cells over the other file's method: the ratio of the two medians.
  r = run_cli("report " + ours + " " + theirs + " --metric speedup --format csv --baseline " + c.method, dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const double want = c.timing.median_s / o.cells[0].timing.median_s;
  const std::size_t at = r.out.find("," + o.cells[0].method + ",");  // run,method,speedup
  REQUIRE(at != std::string::npos);
  const std::string row = r.out.substr(at, r.out.find('\n', at) - at);
  CHECK(std::stod(row.substr(row.rfind(',') + 1)) == Approx(want).epsilon(1e-6));
  fs::remove_all(dir);
}

#endif  // ATTNBENCH_HAVE_CUDA
