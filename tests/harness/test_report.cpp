// The report: each format against checked-in expected files, determinism, pivots, and metric errors.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include "attnbench/report.hpp"

using namespace attnbench;
namespace fs = std::filesystem;

namespace {

CellRecord cell(std::int64_t index, const std::string& label, const std::string& params, const std::string& task,
                std::int64_t q_len, std::int64_t kv_len, double median_s) {
  CellRecord c;
  c.index = index;
  c.method = label;
  c.method_name = label;
  c.family = "exact";
  c.method_params = params;
  c.task = task;
  c.task_kind = task == "needle" ? "retrieval" : "efficiency";
  c.task_params = "{\"q_len\":" + std::to_string(q_len) + ",\"kv_len\":" + std::to_string(kv_len) + "}";
  c.id = label + params + "|" + task + c.task_params;
  c.status = "ok";
  c.device = "cpu";
  c.threads = 2;
  c.batch = 1;
  c.heads = 8;
  c.kv_heads = 8;
  c.q_len = q_len;
  c.kv_len = kv_len;
  c.head_dim = 64;
  c.value_dim = 64;
  c.dtype = "fp32";
  c.mask = q_len == kv_len ? "causal" : "full";
  c.causal = q_len == kv_len;
  c.flops = 4.0 * c.heads * q_len * kv_len * c.head_dim / (c.causal ? 2 : 1);
  c.timing.samples = 10;
  c.timing.median_s = median_s;
  c.timing.stddev_s = median_s * 0.02;
  c.timing.min_s = median_s * 0.97;
  c.timing.max_s = median_s * 1.05;
  c.peak_bytes = 4 * q_len * 8 * 64 * 3;
  return c;
}

// A run with a parameter grid (flash block_k 64 and 128), cross attention, a retrieval task, and a cell
// of each status, written out of index order.
ResultsFile smoke_run() {
  ResultsFile r;
  r.path = "results/smoke.h5";
  r.manifest_name = "smoke";
  r.manifest_text = R"({"name": "smoke", "baseline": "exact", "methods": []})";
  r.expected_cells = 9;

  CellRecord exact = cell(0, "exact", "{}", "lra", 1024, 1024, 0.0123456);
  exact.metrics = {{"rel_l2", 0.0}, {"max_abs", 0.0}};
  CellRecord flash64 = cell(1, "flash", R"({"block_k":64,"block_q":64})", "lra", 1024, 1024, 0.00456789);
  flash64.metrics = {{"rel_l2", 1.234567e-7}, {"max_abs", 3.5e-6}};
  CellRecord flash128 = cell(2, "flash", R"({"block_k":128,"block_q":64})", "lra", 1024, 1024, 0.0051);
  flash128.metrics = {{"rel_l2", 2.5e-7}, {"max_abs", 4e-6}};
  CellRecord linformer = cell(3, "linformer_k256", R"({"k":256})", "lra", 1024, 1024, 0);
  linformer.status = "unsupported";
  linformer.reason = "causal masks are not supported by low-rank projections of keys and values; use a full mask";
  linformer.timing = TimingStats{};
  linformer.peak_bytes = 0;

  CellRecord exact_x = cell(4, "exact", "{}", "lra", 1, 4096, 0.00025);
  exact_x.metrics = {{"rel_l2", 0.0}, {"max_abs", 0.0}};
  CellRecord flash_x = cell(5, "flash", R"({"block_k":64,"block_q":64})", "lra", 1, 4096, 0.0002);
  flash_x.metrics = {{"rel_l2", 9.9e-8}, {"max_abs", 1e-6}};
  CellRecord sparse_x = cell(6, "sparse", R"({"top_k":32})", "lra", 1, 4096, 0.5);
  sparse_x.status = "failed";
  sparse_x.reason = "timeout:\nruns took 130 s in all, over the policy's timeout_s of 120 s (raise \"timeout_s\", 50% more)";

  CellRecord needle_exact = cell(7, "exact", "{}", "needle", 2048, 2048, 0.04);
  needle_exact.metrics = {{"accuracy", 1.0}};
  CellRecord needle_flash = cell(8, "flash", R"({"block_k":128,"block_q":64})", "needle", 2048, 2048, 0.02);
  needle_flash.metrics = {{"accuracy", 0.9375}};

  r.cells = {exact, flash64, flash128, linformer, sparse_x, exact_x, flash_x, needle_exact, needle_flash};
  return r;
}

std::string render(const std::vector<ResultsFile>& files, ReportFormat format, const std::string& metric = "") {
  ReportOptions opts;
  opts.format = format;
  opts.metric = metric;
  return render_report(files, opts);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Compares with tests/data/NAME; ATTNBENCH_UPDATE_EXPECTED=1 rewrites the file instead (then read the diff).
void check_expected(const std::string& name, const std::string& actual) {
  const fs::path expected_path = fs::path(ATTNBENCH_SOURCE_DIR) / "tests" / "data" / name;
  if (std::getenv("ATTNBENCH_UPDATE_EXPECTED")) {
    std::ofstream(expected_path, std::ios::binary) << actual;
    WARN("rewrote " << expected_path.string());
    return;
  }
  REQUIRE(fs::exists(expected_path));
  const std::string expected = slurp(expected_path);
  INFO("expected " << expected_path.string() << ":\n" << expected << "\nactual:\n" << actual);
  CHECK(actual == expected);
}

}  // namespace

TEST_CASE("report: the summary table in each format matches the checked-in files", "[report]") {
  const std::vector<ResultsFile> files{smoke_run()};
  check_expected("report_expected.md", render(files, ReportFormat::markdown));
  check_expected("report_expected.tex", render(files, ReportFormat::latex));
  check_expected("report_expected.csv", render(files, ReportFormat::csv));
}

TEST_CASE("report: pivots of a metric match the checked-in files", "[report]") {
  const std::vector<ResultsFile> files{smoke_run()};
  check_expected("report_pivot_latency.md", render(files, ReportFormat::markdown, "latency_ms"));
  check_expected("report_pivot_rel_l2.csv", render(files, ReportFormat::csv, "rel_l2"));
}

TEST_CASE("report: the same input gives the same bytes", "[report]") {
  const std::vector<ResultsFile> files{smoke_run(), smoke_run()};
  for (const ReportFormat f : {ReportFormat::markdown, ReportFormat::latex, ReportFormat::csv})
    for (const std::string metric : {"", "speedup", "gflops", "peak_mb", "accuracy"})
      CHECK(render(files, f, metric) == render(files, f, metric));
}

TEST_CASE("report: the caption counts cells by status", "[report]") {
  const std::string md = render({smoke_run()}, ReportFormat::markdown);
  CHECK(md.rfind("attnbench report — 9 cells from 1 file(s): 7 ok, 1 failed, 1 unsupported\n", 0) == 0);
  CHECK(render({}, ReportFormat::markdown).rfind("attnbench report — 0 cells from 0 file(s)", 0) == 0);
  CHECK_THAT(render({smoke_run()}, ReportFormat::latex), Catch::Contains("\\caption{attnbench report --- 9 cells"));
  CHECK(render({smoke_run()}, ReportFormat::csv).rfind("method,task,shape,status,", 0) == 0);
}

TEST_CASE("report: a run column appears only when the files come from different manifests", "[report]") {
  const ResultsFile a = smoke_run();
  ResultsFile b = smoke_run();
  CHECK(render({a, b}, ReportFormat::csv).rfind("method,", 0) == 0);
  b.manifest_name = "smoke_bf16";
  const std::string csv = render({a, b}, ReportFormat::csv);
  CHECK(csv.rfind("run,method,", 0) == 0);
  CHECK_THAT(csv, Catch::Contains("\nsmoke_bf16,exact,lra,"));
  const std::string pivot = render({a, b}, ReportFormat::markdown, "latency_ms");
  CHECK_THAT(pivot, Catch::Contains("| smoke_bf16 | exact "));
}

TEST_CASE("report: speedup is against the baseline of the same task instance", "[report]") {
  const std::string csv = render({smoke_run()}, ReportFormat::csv, "speedup");
  // exact 0.0123456 s vs flash block_k=64 0.00456789 s on lra L1024.
  CHECK_THAT(csv, Catch::Contains("\nflash block_k=64,2.70269205,"));
  ResultsFile no_baseline = smoke_run();
  no_baseline.manifest_text = R"({"name": "smoke"})";
  CHECK_THAT(render({no_baseline}, ReportFormat::csv), !Catch::Contains("speedup"));
  CHECK_THROWS_AS(render({no_baseline}, ReportFormat::csv, "speedup"), std::invalid_argument);
}

TEST_CASE("report: an unknown metric names the ones there are", "[report]") {
  try {
    render({smoke_run()}, ReportFormat::markdown, "tflops");
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) ==
          "no cell has metric 'tflops' (available: latency_ms, gflops, peak_mb, flop_reduction, efficiency_length, speedup, rel_l2, max_abs, accuracy)");
  }
}

TEST_CASE("report: format names", "[report]") {
  CHECK(parse_report_format("md") == ReportFormat::markdown);
  CHECK(parse_report_format("latex") == ReportFormat::latex);
  CHECK(parse_report_format("csv") == ReportFormat::csv);
  CHECK_THROWS_AS(parse_report_format("html"), std::invalid_argument);
}

TEST_CASE("report: efficiency length is the shortest length from which a method wins from then on", "[report]") {
  ResultsFile r;
  r.manifest_name = "eff";
  r.manifest_text = R"({"name": "eff", "baseline": "flash"})";
  std::int64_t i = 0;
  auto add = [&](const std::string& label, std::int64_t len, double median_s) {
    CellRecord c = cell(i++, label, "{}", "synthetic", len, len, median_s);
    c.task_params = "{\"seq_len\":" + std::to_string(len) + "}";
    r.cells.push_back(c);
  };
  // sparse loses at 512, wins from 1024 on; linear wins everywhere; slow never wins; wobbly wins at 1024
  // only, then loses again at 2048, so it has no efficiency length.
  const double flash_s[] = {1.0, 4.0, 16.0};
  const std::int64_t lens[] = {512, 1024, 2048};
  for (int k = 0; k < 3; ++k) {
    add("flash", lens[k], flash_s[k]);
    add("sparse", lens[k], flash_s[k] * (k == 0 ? 1.5 : 0.5));
    add("linear", lens[k], flash_s[k] * 0.1);
    add("slow", lens[k], flash_s[k] * 2);
    add("wobbly", lens[k], flash_s[k] * (k == 1 ? 0.9 : 1.1));
  }
  const std::string md = render({r}, ReportFormat::markdown, "efficiency_length");
  CHECK_THAT(md, Catch::Contains("| sparse ") && Catch::Contains("1024 |"));
  CHECK_THAT(md, Catch::Contains("≤512"));
  const std::string csv = render({r}, ReportFormat::csv, "efficiency_length");
  CHECK_THAT(csv, Catch::Contains("sparse,1024\n"));
  CHECK_THAT(csv, Catch::Contains("linear,512\n"));
  CHECK_THAT(csv, Catch::Contains("slow,\n"));
  CHECK_THAT(csv, Catch::Contains("wobbly,\n"));
  CHECK_THAT(csv, !Catch::Contains("flash,"));  // the baseline has no row of its own
}

TEST_CASE("report: flop_reduction counts against the model's full multi-head attention", "[report]") {
  ResultsFile r;
  r.manifest_name = "sqa";
  r.manifest_text = R"({"name": "sqa"})";
  CellRecord mha = cell(0, "flash", "{}", "synthetic", 1024, 1024, 1.0);
  mha.task_params = R"({"heads":8,"model_heads":0})";
  CellRecord sqa = cell(1, "flash_sqa", "{}", "synthetic", 1024, 1024, 0.5);
  sqa.heads = 4;
  sqa.flops /= 2;
  sqa.task_params = R"({"heads":4,"model_heads":8})";
  r.cells = {mha, sqa};
  const std::string csv = render({r}, ReportFormat::csv, "flop_reduction");
  CHECK_THAT(csv, Catch::Contains("flash,1,\n") || Catch::Contains("flash,1\n"));
  CHECK_THAT(csv, Catch::Contains("flash_sqa,,2") || Catch::Contains("flash_sqa,2"));
}
