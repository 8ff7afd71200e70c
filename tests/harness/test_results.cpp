// Result files: exact round trip, atomic rewrite, clear errors for files that are not ours, pandas access.
#include <H5Cpp.h>
#include <unistd.h>

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "attnbench/results.hpp"

using namespace attnbench;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed when the case ends, so that tests never see each other's files.
struct ScratchDir {
  explicit ScratchDir(const std::string& name)
      : path(fs::temp_directory_path() / ("attnbench_test_results_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  fs::path path;
};

CellRecord ok_cell(std::int64_t index, const std::string& label, double median_s) {
  CellRecord c;
  c.index = index;
  c.method = label;
  c.method_name = label == "exact" ? "exact_cpu" : "flash_cpu";
  c.family = "exact";
  c.method_params = R"({"block_k":64})";
  c.task = "lra";
  c.task_kind = "efficiency";
  c.task_params = R"({"q_len":1024,"kv_len":1024,"head_dim":64})";
  c.id = label + c.method_params + "|" + c.task + c.task_params;
  c.seed = 0xFEDCBA9876543210ull;  // above INT64_MAX: must survive as uint64
  c.status = "ok";
  c.device = "cpu";
  c.threads = 2;
  c.batch = 1;
  c.heads = 8;
  c.kv_heads = 2;
  c.q_len = 1024;
  c.kv_len = 1024;
  c.head_dim = 64;
  c.value_dim = 64;
  c.dtype = "fp32";
  c.mask = "causal";
  c.causal = true;
  c.flops = 4.0 * 8 * 1024 * 1024 * 64 / 2;
  c.bytes = 1.0 / 3.0;
  c.samples = {median_s, median_s * 1.1, median_s * 0.9, 0.1, 1e-300};
  c.timing.warmup = 2;
  c.timing.samples = static_cast<std::int64_t>(c.samples.size());
  c.timing.median_s = median_s;
  c.timing.mean_s = median_s * (1 + 1e-16);
  c.timing.min_s = median_s * 0.9;
  c.timing.max_s = median_s * 1.1;
  c.timing.stddev_s = std::sqrt(2.0) * 1e-5;
  c.timing.rse = 0.0123;
  c.timing.converged = true;
  c.timing.stop_reason = "noise";
  c.peak_bytes = 123456789012;
  c.metrics = {{"rel_l2", 1.2345678901234567e-7}, {"max_abs", 3.0e-6}, {"nan_metric", std::nan("")}};
  c.started_unix = 1700000000.123456;
  c.wall_s = 0.75;
  return c;
}

ResultsFile sample_file() {
  ResultsFile r;
  r.manifest_text = "{\n  \"name\": \"smoke\",\n  \"baseline\": \"exact\"\n}\n";
  r.manifest_name = "smoke";
  r.manifest_path = "suites/smoke.json";
  r.environment = R"({"host":"test","threads":2})";
  r.expected_cells = 6;
  r.cells.push_back(ok_cell(0, "exact", 0.0123));
  r.cells.push_back(ok_cell(1, "flash", 0.00456));

  CellRecord unsupported = ok_cell(3, "linformer", 0);  // index 2 missing: a run still in progress
  unsupported.status = "unsupported";
  unsupported.reason = "kv_len 1000 is not a multiple of block_k 64; choose block_k dividing kv_len";
  unsupported.samples.clear();
  unsupported.metrics.clear();
  unsupported.timing = TimingStats{};
  r.cells.push_back(unsupported);

  CellRecord failed = ok_cell(4, "sparse", 0);
  failed.status = "failed";
  failed.reason = "timeout: runs took 130 s in all, over the policy's timeout_s of 120 s";
  failed.timing.stop_reason = "timeout";
  failed.timing.converged = false;
  failed.causal = false;
  failed.mask = "sliding_window(256)";
  failed.metrics = {{"accuracy", 0.0}};
  r.cells.push_back(failed);

  CellRecord empty = ok_cell(5, "empty", 0);  // every string empty, every number zero
  empty = CellRecord{};
  empty.index = 5;
  r.cells.push_back(empty);
  return r;
}

bool same_bits(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

void require_same(const CellRecord& a, const CellRecord& b) {
  INFO("cell " << a.index);
  CHECK(a.index == b.index);
  CHECK(a.id == b.id);
  CHECK(a.method == b.method);
  CHECK(a.method_name == b.method_name);
  CHECK(a.family == b.family);
  CHECK(a.method_params == b.method_params);
  CHECK(a.task == b.task);
  CHECK(a.task_kind == b.task_kind);
  CHECK(a.task_params == b.task_params);
  CHECK(a.seed == b.seed);
  CHECK(a.status == b.status);
  CHECK(a.reason == b.reason);
  CHECK(a.device == b.device);
  CHECK(a.threads == b.threads);
  CHECK(a.batch == b.batch);
  CHECK(a.heads == b.heads);
  CHECK(a.kv_heads == b.kv_heads);
  CHECK(a.q_len == b.q_len);
  CHECK(a.kv_len == b.kv_len);
  CHECK(a.head_dim == b.head_dim);
  CHECK(a.value_dim == b.value_dim);
  CHECK(a.dtype == b.dtype);
  CHECK(a.mask == b.mask);
  CHECK(a.causal == b.causal);
  CHECK(same_bits(a.flops, b.flops));
  CHECK(same_bits(a.bytes, b.bytes));
  CHECK(a.timing.warmup == b.timing.warmup);
  CHECK(a.timing.samples == b.timing.samples);
  CHECK(same_bits(a.timing.median_s, b.timing.median_s));
  CHECK(same_bits(a.timing.mean_s, b.timing.mean_s));
  CHECK(same_bits(a.timing.min_s, b.timing.min_s));
  CHECK(same_bits(a.timing.max_s, b.timing.max_s));
  CHECK(same_bits(a.timing.stddev_s, b.timing.stddev_s));
  CHECK(same_bits(a.timing.rse, b.timing.rse));
  CHECK(a.timing.converged == b.timing.converged);
  CHECK(a.timing.stop_reason == b.timing.stop_reason);
  REQUIRE(a.samples.size() == b.samples.size());
  for (std::size_t i = 0; i < a.samples.size(); ++i) CHECK(same_bits(a.samples[i], b.samples[i]));
  CHECK(a.peak_bytes == b.peak_bytes);
  REQUIRE(a.metrics.size() == b.metrics.size());
  for (std::size_t i = 0; i < a.metrics.size(); ++i) {
    CHECK(a.metrics[i].first == b.metrics[i].first);
    CHECK(same_bits(a.metrics[i].second, b.metrics[i].second));
  }
  CHECK(same_bits(a.started_unix, b.started_unix));
  CHECK(same_bits(a.wall_s, b.wall_s));
}

std::string error_of(const std::string& path) {
  try {
    read_results(path);
  } catch (const ResultsError& e) {
    return e.what();
  }
  return "(no ResultsError)";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("results: a written file reads back exactly", "[results]") {
  const ScratchDir scratch("round_trip");
  const fs::path& dir = scratch.path;
  const std::string path = (dir / "sub" / "run.h5").string();  // the folder is created on demand
  const ResultsFile written = sample_file();
  write_results(path, written);
  CHECK_FALSE(fs::exists(path + ".tmp"));

  const ResultsFile read = read_results(path);
  CHECK(read.path == path);
  CHECK(read.schema_version == kSchemaVersion);
  CHECK(read.manifest_text == written.manifest_text);
  CHECK(read.manifest_name == written.manifest_name);
  CHECK(read.manifest_path == written.manifest_path);
  CHECK(read.environment == written.environment);
  CHECK(read.expected_cells == written.expected_cells);
  REQUIRE(read.cells.size() == written.cells.size());
  for (std::size_t i = 0; i < written.cells.size(); ++i) require_same(read.cells[i], written.cells[i]);

  const H5::H5File file(path, H5F_ACC_RDONLY);
  std::string created_by;
  H5::Attribute a = file.openAttribute("created_by");
  a.read(a.getStrType(), created_by);
  CHECK(created_by.rfind("attnbench ", 0) == 0);
}

TEST_CASE("results: a file with no cells round-trips, and rewriting replaces it whole", "[results]") {
  const ScratchDir scratch("rewrite");
  const fs::path& dir = scratch.path;
  const std::string path = (dir / "run.h5").string();
  ResultsFile r = sample_file();
  r.cells.clear();
  write_results(path, r);
  ResultsFile read = read_results(path);
  CHECK(read.cells.empty());
  CHECK(read.expected_cells == 6);

  // A stale .tmp from a killed writer does not get in the way.
  std::ofstream(path + ".tmp") << "half a file";
  const ResultsFile full = sample_file();
  write_results(path, full);
  read = read_results(path);
  CHECK(read.cells.size() == full.cells.size());
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("results: two cells with one index are refused", "[results]") {
  const ScratchDir scratch("duplicate");
  const fs::path& dir = scratch.path;
  ResultsFile r = sample_file();
  r.cells[1].index = r.cells[0].index;
  CHECK_THROWS_AS(write_results((dir / "run.h5").string(), r), ResultsError);
}

TEST_CASE("results: files that are not attnbench results are named in the error", "[results]") {
  const ScratchDir scratch("errors");
  const fs::path& dir = scratch.path;

  const std::string missing = (dir / "missing.h5").string();
  std::string msg = error_of(missing);
  CHECK_THAT(msg, Catch::Contains(missing) && Catch::Contains("does not exist"));

  const std::string text = (dir / "notes.txt").string();
  std::ofstream(text) << "not an HDF5 file\n";
  msg = error_of(text);
  CHECK_THAT(msg, Catch::Contains(text) && Catch::Contains("not an HDF5 file"));

  const std::string foreign = (dir / "foreign.h5").string();
  {
    H5::H5File f(foreign, H5F_ACC_TRUNC);
    const hsize_t n = 3;
    f.createDataSet("x", H5::PredType::NATIVE_DOUBLE, H5::DataSpace(1, &n));
  }
  msg = error_of(foreign);
  CHECK_THAT(msg, Catch::Contains(foreign) && Catch::Contains("not an attnbench result file"));

  const std::string future = (dir / "future.h5").string();
  ResultsFile r = sample_file();
  r.schema_version = "attnbench-results/99";
  write_results(future, r);
  msg = error_of(future);
  CHECK_THAT(msg, Catch::Contains(future) && Catch::Contains("attnbench-results/99"));
}

TEST_CASE("results: the Python snippet in results/README.md reads a written file", "[results]") {
  if (std::system("/usr/bin/python3 -c \"import h5py, pandas\" >/dev/null 2>&1") != 0) {
    WARN("skipped: python3-h5py not installed");
    SUCCEED();
    return;
  }
  const ScratchDir scratch("python");
  const fs::path& dir = scratch.path;
  const std::string path = (dir / "run.h5").string();
  write_results(path, sample_file());

  // The first ```python block of the README, reading our file instead of results/example.h5.
  const std::string readme = slurp(fs::path(ATTNBENCH_SOURCE_DIR) / "results" / "README.md");
  const std::string open = "```python\n";
  const std::size_t begin = readme.find(open);
  REQUIRE(begin != std::string::npos);
  const std::size_t end = readme.find("```", begin + open.size());
  REQUIRE(end != std::string::npos);
  std::string snippet = readme.substr(begin + open.size(), end - begin - open.size());
  const std::string example = "results/example.h5";
  const std::size_t at = snippet.find(example);
  REQUIRE(at != std::string::npos);
  snippet.replace(at, example.size(), path);
  std::ofstream(dir / "snippet.py") << snippet;

  const fs::path out = dir / "out.txt";
  const std::string cmd = "/usr/bin/python3 " + (dir / "snippet.py").string() + " > " + out.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string output = slurp(out);
  INFO(output);
  REQUIRE(rc == 0);
  CHECK_THAT(output, Catch::Contains("attnbench-results/1 smoke 6"));
  CHECK_THAT(output, Catch::Contains("exact") && Catch::Contains("linformer") && Catch::Contains("unsupported"));
  CHECK_THAT(output, Catch::Contains("0.01230"));  // exact's median_s
  CHECK_THAT(output, Catch::Contains("rel_l2") && Catch::Contains("accuracy"));
  CHECK_THAT(output, Catch::Contains("1.234568e-07"));  // flash's rel_l2 in pandas' float format
}
