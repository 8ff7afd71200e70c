// The report: each format against checked-in expected files, determinism, pivots, metric errors, the best in
// bold, the latency spread, and the retrieval tables.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

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
  // Quartiles 0.99 and 1.01 of the median: the tables show median ± 0.01·median.
  for (const double f : {1.05, 0.97, 1.0, 1.01, 0.99}) c.samples.push_back(median_s * f);
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
  linformer.samples.clear();
  linformer.peak_bytes = 0;

  CellRecord exact_x = cell(4, "exact", "{}", "lra", 1, 4096, 0.00025);
  exact_x.metrics = {{"rel_l2", 0.0}, {"max_abs", 0.0}};
  CellRecord flash_x = cell(5, "flash", R"({"block_k":64,"block_q":64})", "lra", 1, 4096, 0.0002);
  flash_x.metrics = {{"rel_l2", 9.9e-8}, {"max_abs", 1e-6}};
  CellRecord sparse_x = cell(6, "sparse", R"({"top_k":32})", "lra", 1, 4096, 0.5);
  sparse_x.status = "failed";
  sparse_x.reason =
      "timeout:\nruns took 130 s in all, over the policy's timeout_s of 120 s (raise \"timeout_s\", 50% more)";

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

TEST_CASE("report: --baseline takes speedups over a method label of the same task instance in any file",
          "[report]") {
  // A second file (as baselines/external/torch_sdpa.py writes) with a peer on lra L1024 and L1x4096.
  ResultsFile peers;
  peers.path = "runs/torch.h5";
  peers.manifest_name = "torch_sdpa";
  peers.manifest_text = R"({"name": "torch_sdpa", "methods": []})";
  peers.cells = {cell(0, "torch_flash", "{}", "lra", 1024, 1024, 0.005), cell(1, "torch_flash", "{}", "lra", 1, 4096, 0.0004)};
  ReportOptions opts;
  opts.format = ReportFormat::csv;
  opts.metric = "speedup";
  opts.baseline = "torch_flash";
  const std::string csv = render_report({smoke_run(), peers}, opts);
  // torch_flash 0.005 s over flash block_k=64 0.00456789 s and over exact 0.0123456 s on L1024; on L1x4096
  // 0.0004 s over flash 0.0002 s; the needle task has no torch_flash cell, so no speedup there.
  CHECK_THAT(csv, Catch::Contains("\nsmoke,flash block_k=64,1.09459729,2,\n") &&
                      Catch::Contains("\nsmoke,exact,0.405002592,1.6,\n") &&
                      Catch::Contains("\ntorch_sdpa,torch_flash,1,1,\n"));
  opts.format = ReportFormat::markdown;
  opts.metric.clear();
  const std::string md = render_report({smoke_run(), peers}, opts);
  CHECK_THAT(md, Catch::Contains("speedups over torch_flash"));
  opts.baseline = "no_such_label";
  try {
    render_report({smoke_run(), peers}, opts);
    FAIL("an unknown baseline label was accepted");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("--baseline no_such_label") && Catch::Contains("torch_flash") &&
                             Catch::Contains("exact"));
  }
}

TEST_CASE("report: an unknown metric names the ones there are", "[report]") {
  try {
    render({smoke_run()}, ReportFormat::markdown, "teraflops");
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) ==
          "no cell has metric 'teraflops' (available: latency_ms, gflops, tflops, bytes_mb, gbps, peak_mb, "
          "flop_reduction, efficiency_length, speedup, rel_l2, max_abs, accuracy)");
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

namespace {

// The LaTeX row whose first cell is `first`, split into its cells.
std::vector<std::string> latex_row(const std::string& tex, const std::string& first) {
  std::istringstream lines(tex);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(first + " & ", 0) != 0) continue;
    line = line.substr(0, line.rfind(" \\\\"));
    std::vector<std::string> cells;
    for (std::size_t at = 0;;) {
      const std::size_t next = line.find(" & ", at);
      cells.push_back(line.substr(at, next == std::string::npos ? std::string::npos : next - at));
      if (next == std::string::npos) break;
      at = next + 3;
    }
    return cells;
  }
  return {};
}

bool bold(const std::string& cell) { return cell.rfind("\\textbf{", 0) == 0; }

}  // namespace

TEST_CASE("report: LaTeX bolds the best value of each column within a task instance", "[report]") {
  const std::string tex = render({smoke_run()}, ReportFormat::latex);
  // Columns: method task shape status latency GFLOP/s peak speedup rel_l2 max_abs accuracy reason.
  const auto exact = latex_row(tex, "exact");  // the first exact row: lra L1024
  const auto flash64 = latex_row(tex, "flash block\\_k=64");
  const auto flash128 = latex_row(tex, "flash block\\_k=128");
  REQUIRE(exact.size() == 12);
  REQUIRE(flash64.size() == 12);
  REQUIRE(flash128.size() == 12);
  // Latency: lowest wins; the spread is half the interquartile range (0.01 · 4.568 ms).
  CHECK(flash64[4] == "\\textbf{4.568 $\\pm$ 0.046}");
  CHECK(!bold(exact[4]));
  CHECK(!bold(flash128[4]));
  // GFLOP/s and speedup: highest wins.
  CHECK(flash64[5] == "\\textbf{235.1}");
  CHECK(!bold(exact[5]));
  CHECK(flash64[7] == "\\textbf{2.70}");
  // Peak memory ties in all three: no best. rel_l2 and max_abs: exact's 0 is lowest.
  CHECK(!bold(exact[6]));
  CHECK(!bold(flash64[6]));
  CHECK(exact[8] == "\\textbf{0}");
  CHECK(!bold(flash64[8]));
  // The needle instance is its own group: exact's accuracy 1 beats 0.9375, and its latency loses.
  const std::string needle_exact = tex.substr(tex.find("exact & needle"));
  CHECK(needle_exact.find("\\textbf{1} &") < needle_exact.find('\n'));
  CHECK_THAT(tex, Catch::Contains("\\textbf{20 $\\pm$ 0.2}"));
  // Markdown and CSV carry no bold.
  CHECK_THAT(render({smoke_run()}, ReportFormat::markdown), !Catch::Contains("**"));
  CHECK_THAT(render({smoke_run()}, ReportFormat::csv), !Catch::Contains("textbf"));
}

TEST_CASE("report: a pivot in LaTeX bolds the best of each column", "[report]") {
  const std::string tex = render({smoke_run()}, ReportFormat::latex, "latency_ms");
  const auto exact = latex_row(tex, "exact");
  const auto flash64 = latex_row(tex, "flash block\\_k=64");
  REQUIRE(exact.size() == 4);
  REQUIRE(flash64.size() == 4);
  CHECK(flash64[1] == "\\textbf{4.568}");  // L1024: 4.568 < 5.1 < 12.35
  CHECK(flash64[2] == "\\textbf{0.2}");    // L1×4096: 0.2 < 0.25
  CHECK(exact[3] == "40");                 // needle: 20 (flash block_k=128) wins
  CHECK_THAT(tex, Catch::Contains("\\textbf{20}"));
  // Accuracy: higher is better.
  const std::string acc = render({smoke_run()}, ReportFormat::latex, "accuracy");
  CHECK(latex_row(acc, "exact").at(3) == "\\textbf{1}");  // the needle column
}

TEST_CASE("report: latency spread is the interquartile range of the samples", "[report]") {
  const std::string csv = render({smoke_run()}, ReportFormat::csv);
  CHECK(csv.rfind("method,task,shape,status,latency_ms,latency_q1_ms,latency_q3_ms,", 0) == 0);
  // 12.3456 ms with quartiles at 0.99 and 1.01 of it.
  CHECK_THAT(csv, Catch::Contains("\nexact,lra,L1024 D64 H8/8 fp32 causal,ok,12.3456,12.222144,12.469056,"));
  // Without recorded samples, the median alone.
  ResultsFile r = smoke_run();
  for (CellRecord& c : r.cells) c.samples.clear();
  CHECK_THAT(render({r}, ReportFormat::markdown), Catch::Contains(" 12.35 |") && !Catch::Contains("±"));
}

namespace {

// RULER cells: per method, per length, per variant, an accuracy over 100 trials.
ResultsFile ruler_run(const std::map<std::string, std::vector<std::vector<double>>>& accuracy) {
  ResultsFile r;
  r.manifest_name = "ruler_quick";
  r.manifest_text = R"({"name": "ruler_quick"})";
  const std::vector<std::int64_t> lengths{4096, 8192};
  const std::vector<std::string> variants{"single", "multikey", "vt"};
  std::int64_t i = 0;
  for (const auto& [method, by_length] : accuracy)
    for (std::size_t l = 0; l < lengths.size(); ++l)
      for (std::size_t v = 0; v < variants.size(); ++v) {
        if (std::isnan(by_length[l][v])) continue;  // no cell
        CellRecord c = cell(i++, method, "{}", "ruler", lengths[l], lengths[l], 0.01);
        c.task_kind = "retrieval";
        c.task_params = R"({"variant":")" + variants[v] + R"(","seq_len":)" + std::to_string(lengths[l]) + "}";
        c.metrics = {{"accuracy", by_length[l][v]}, {"accuracy_ci_low", 0}, {"accuracy_ci_high", 1}, {"trials", 100}};
        if (by_length[l][v] < 0) {
          c.status = "failed";
          c.reason = "out of memory";
          c.metrics.clear();
        }
        r.cells.push_back(c);
      }
  return r;
}

std::vector<std::string> csv_line(const std::string& csv, const std::string& first) {
  std::istringstream lines(csv);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(first + ",", 0) != 0) continue;
    std::vector<std::string> fields;
    std::istringstream f(line);
    for (std::string field; std::getline(f, field, ',');) fields.push_back(field);
    if (line.back() == ',') fields.push_back("");
    return fields;
  }
  return {};
}

}  // namespace

TEST_CASE("report: the RULER table averages variants per length, then lengths", "[report]") {
  const double nan = std::nan("");
  // std::map: methods in name order, which is also the cells' order.
  const ResultsFile r = ruler_run({
      {"exact", {{1.0, 1.0, 1.0}, {1.0, 1.0, 1.0}}},
      {"gappy", {{1.0, 1.0, 1.0}, {1.0, nan, 1.0}}},  // a variant missing at 8K
      {"oom", {{1.0, 1.0, 1.0}, {1.0, -1.0, 1.0}}},   // a variant failed at 8K
      {"window", {{0.9, 0.6, 0.3}, {0.5, 0.2, 0.2}}},
  });
  const std::string csv = render({r}, ReportFormat::csv, "ruler");
  CHECK(
      csv.rfind("method,L4096,L4096_ci_low,L4096_ci_high,L8192,L8192_ci_low,L8192_ci_high,avg,avg_ci_low,avg_ci_high\n",
                0) == 0);
  const auto window = csv_line(csv, "window");
  REQUIRE(window.size() == 10);
  CHECK(std::stod(window[1]) == Approx(60));  // (90 + 60 + 30) / 3
  CHECK(std::stod(window[4]) == Approx(30));  // (50 + 20 + 20) / 3
  CHECK(std::stod(window[7]) == Approx(45));  // (60 + 30) / 2
  // 95% Wilson interval of 60% over the 300 trials pooled: [54.36, 65.39] (by hand: z = 1.96).
  CHECK(std::stod(window[2]) == Approx(54.36).margin(0.01));
  CHECK(std::stod(window[3]) == Approx(65.39).margin(0.01));
  // 45% over 600 trials: [41.06, 49.00].
  CHECK(std::stod(window[8]) == Approx(41.06).margin(0.01));
  CHECK(std::stod(window[9]) == Approx(49.00).margin(0.01));
  const auto exact = csv_line(csv, "exact");
  REQUIRE(exact.size() == 10);
  CHECK(exact[7] == "100");
  // A length with a variant missing or failed has no mean, and then neither has the average.
  const auto gappy = csv_line(csv, "gappy");
  REQUIRE(gappy.size() == 10);
  CHECK(gappy[1] == "100");
  CHECK(gappy[4].empty());
  CHECK(gappy[7].empty());

  const std::string md = render({r}, ReportFormat::markdown, "ruler");
  CHECK_THAT(md, Catch::Contains("mean over 3 variant(s) (single, multikey, vt)"));
  CHECK_THAT(md, Catch::Contains("| method | 4K    | 8K     | avg   |"));
  CHECK_THAT(md, Catch::Contains("| window |  60.0 |   30.0 |  45.0 |"));
  CHECK_THAT(md, Catch::Contains("| oom    | 100.0 | failed |     — |"));
  // LaTeX: exact's 100.0 is the best of each column (tied with gappy and oom where they have one).
  const std::string tex = render({r}, ReportFormat::latex, "ruler");
  CHECK(latex_row(tex, "exact") ==
        std::vector<std::string>{"exact", "\\textbf{100.0}", "\\textbf{100.0}", "\\textbf{100.0}"});
  CHECK(latex_row(tex, "window") == std::vector<std::string>{"window", "60.0", "30.0", "45.0"});
  CHECK_THROWS_AS(render({smoke_run()}, ReportFormat::csv, "ruler"), std::invalid_argument);
}

TEST_CASE("report: the needle table averages depths per length", "[report]") {
  ResultsFile r;
  r.manifest_name = "niah";
  r.manifest_text = R"({"name": "niah"})";
  std::int64_t i = 0;
  for (const std::int64_t len : {1024, 2048})
    for (const int depth : {0, 50, 100}) {
      CellRecord c = cell(i++, "sliding_window", "{}", "niah", len, len, 0.01);
      c.task_kind = "retrieval";
      c.task_params = "{\"seq_len\":" + std::to_string(len) + ",\"depth\":" + std::to_string(depth) +
                      ",\"samples\":50,\"signal\":0.9}";
      // Only the needle near the end is inside the window at 2K.
      c.metrics = {{"accuracy", len == 1024 || depth == 100 ? 1.0 : 0.0}};
      r.cells.push_back(c);
    }
  const std::string csv = render({r}, ReportFormat::csv, "niah");
  const auto row = csv_line(csv, "sliding_window");
  REQUIRE(row.size() == 10);
  CHECK(row[1] == "100");
  CHECK(std::stod(row[4]) == Approx(100.0 / 3));
  CHECK(std::stod(row[7]) == Approx(200.0 / 3));
  // Trials from the task parameter `samples`: 150 per length.
  CHECK(std::stod(row[5]) > 0);
  CHECK(std::stod(row[6]) < 100);
  CHECK_THAT(render({r}, ReportFormat::markdown, "niah"), Catch::Contains("mean over 3 depth(s) (0, 50, 100)"));
}

TEST_CASE("report: pivot columns of one shape are told apart by the parameters that differ", "[report]") {
  ResultsFile r;
  r.manifest_name = "cols";
  r.manifest_text = R"({"name": "cols"})";
  CellRecord a = cell(0, "flash", "{}", "cab", 512, 512, 1.0);
  a.task_params = R"({"pattern":"self_full","seq_len":512,"heads":4})";
  CellRecord b = cell(1, "flash", "{}", "cab", 512, 512, 2.0);
  b.task_params = R"({"pattern":"other","seq_len":512,"heads":4})";
  r.cells = {a, b};
  const std::string md = render({r}, ReportFormat::markdown, "latency_ms");
  CHECK_THAT(md, Catch::Contains("pattern=self_full |") && Catch::Contains("pattern=other |"));
  CHECK_THAT(md, !Catch::Contains("heads=4"));
}

TEST_CASE("report: RULER's single family counts each haystack as its own variant", "[report]") {
  ResultsFile r;
  r.manifest_name = "ruler";
  r.manifest_text = R"({"name": "ruler"})";
  std::int64_t i = 0;
  // single/noise 100%, single/repeat 50%, multikey (haystack left at its default) 0%: mean 50%.
  for (const auto& [variant, haystack, acc] : std::vector<std::tuple<std::string, std::string, double>>{
           {"single", "noise", 1.0}, {"single", "repeat", 0.5}, {"multikey", "noise", 0.0}}) {
    CellRecord c = cell(i++, "m", "{}", "ruler", 4096, 4096, 0.01);
    c.task_kind = "retrieval";
    c.task_params = R"({"variant":")" + variant + R"(","haystack":")" + haystack + R"(","seq_len":4096})";
    c.metrics = {{"accuracy", acc}, {"trials", 10}};
    r.cells.push_back(c);
  }
  const std::string md = render({r}, ReportFormat::markdown, "ruler");
  CHECK_THAT(md, Catch::Contains("mean over 3 variant(s) (single/noise, single/repeat, multikey)"));
  CHECK_THAT(md, Catch::Contains("| m      | 50.0 | 50.0 |"));
  const auto m = csv_line(render({r}, ReportFormat::csv, "ruler"), "m");
  REQUIRE(m.size() == 7);  // one row: the haystack does not split the method
  CHECK(std::stod(m[1]) == Approx(50));
}

TEST_CASE("report: TFLOP/s, minimum bytes and bandwidth pivots follow their formulas", "[report]") {
  ResultsFile r;
  r.manifest_name = "bw";
  r.manifest_text = R"({"name": "bw"})";
  CellRecord c = cell(0, "flash", "{}", "synthetic", 1024, 1024, 0.5);
  c.flops = 2e12;  // 2 TFLOP in 0.5 s: 4 TFLOP/s
  c.bytes = 3e9;   // 3 GB in 0.5 s: 6 GB/s
  r.cells = {c};
  CHECK_THAT(render({r}, ReportFormat::csv, "tflops"), Catch::Contains("flash,4\n"));
  CHECK_THAT(render({r}, ReportFormat::csv, "bytes_mb"), Catch::Contains("flash,3000\n"));
  CHECK_THAT(render({r}, ReportFormat::csv, "gbps"), Catch::Contains("flash,6\n"));
}

TEST_CASE("compare: B against A cell by cell, with the U test's verdict and the builds named", "[report][compare]") {
  ResultsFile a = smoke_run(), b = smoke_run();
  a.path = "a.h5";
  b.path = "b.h5";
  a.environment = R"({"git_revision": "abc"})";
  b.environment = R"({"git_revision": "abc"})";
  // B: flash block_k=64 10% slower with every sample slower (significant at 5 samples each: p ≈ 0.012),
  // flash block_k=128 0.5% faster (within 1%), exact on L1×4096 3% slower but its samples overlap.
  auto scale = [](CellRecord& c, double f, const std::vector<double>& samples) {
    c.timing.median_s *= f;
    c.samples = samples;
  };
  CellRecord& f64 = b.cells[1];
  for (double& s : f64.samples) s *= 2;  // every B sample above every A sample
  f64.timing.median_s *= 1.10;
  scale(b.cells[2], 0.995, b.cells[2].samples);
  CellRecord& x = b.cells[5];  // exact_x (index 4)
  x.timing.median_s *= 1.03;
  x.samples = {0.00024, 0.00026, 0.000255, 0.000245, 0.00025};
  b.cells.pop_back();  // needle_flash only in A

  CompareOptions opts;
  opts.format = ReportFormat::csv;
  const Comparison c = compare_results(a, b, opts);
  INFO(c.text);
  CHECK(c.compared == 6);  // ok cells with timings in both: exact, flash64, flash128, exact_x, flash_x, needle_exact
  CHECK(c.over == 2);
  CHECK(c.max_delta == Approx(0.10));
  CHECK_THAT(c.text, Catch::Contains("flash block_k=64,lra,L1024 D64 H8/8 fp32 causal,4.56789,5.024679,0.1,") &&
                         Catch::Contains(",slower\n") && Catch::Contains("same (within ±1%)") &&
                         Catch::Contains("slower (not significant)") && Catch::Contains("not compared: A has no timing (failed)"));
  opts.format = ReportFormat::markdown;  // the caption (CSV is the table alone)
  CHECK_THAT(compare_results(a, b, opts).text,
             Catch::StartsWith("attnbench compare — B = b.h5 against A = a.h5: 8 cells in both, 6 with timings, 4 "
                               "within ±1%, largest |B/A − 1| 10.00% (flash block_k=64") &&
                 Catch::Contains("1 only in A, 0 only in B") && Catch::Contains("one build (abc)"));
  b.environment = R"({"git_revision": "def"})";
  CHECK_THAT(compare_results(a, b, opts).text, Catch::Contains("builds differ (A abc, B def)"));
  opts.threshold = 0.2;
  CHECK(compare_results(a, b, opts).over == 0);

  ResultsFile other = smoke_run();
  for (CellRecord& cell : other.cells) cell.id += "?";
  CHECK_THROWS_AS(compare_results(a, other, opts), std::invalid_argument);
}
