// The report's "context parallel" table from hand-made records: one table per shape with the flash cell
// first, speedup against it, communication per rank and share, imbalance; pivots of the counters; and no
// such table for files without distributed cells. Pure functions: every rank checks the same thing.
#include <catch2/catch.hpp>
#include <string>

#include "attnbench/report.hpp"

using namespace attnbench;

namespace {

CellRecord cp_cell(std::int64_t index, const std::string& name, int ranks, std::int64_t len, double median_s) {
  CellRecord c;
  c.index = index;
  c.method = name;
  c.method_name = name;
  c.family = name == "flash" ? "exact" : "distributed";
  c.method_params = name == "flash" ? "{}" : "{\"ranks\":" + std::to_string(ranks) + "}";
  c.task = "synthetic";
  c.task_kind = "efficiency";
  c.task_params = "{\"seq_len\":" + std::to_string(len) + "}";
  c.id = name + c.method_params + "|" + c.task_params;
  c.status = "ok";
  c.device = "cpu";
  c.batch = 1;
  c.heads = 4;
  c.kv_heads = 4;
  c.q_len = c.kv_len = len;
  c.head_dim = c.value_dim = 64;
  c.dtype = "fp32";
  c.mask = "causal";
  c.causal = true;
  c.flops = 1e9;
  c.timing.samples = 3;
  c.timing.median_s = median_s;
  c.samples = {median_s, median_s, median_s};
  c.metrics = {{"rel_l2", 1e-7}, {"max_abs", 1e-6}};
  if (name != "flash")
    c.metrics.insert(c.metrics.end(), {{"ranks", double(ranks)},
                                       {"comm_bytes_per_rank", 2.5e6},
                                       {"comm_s", 0.01},
                                       {"compute_s", 0.03},
                                       {"busy_s_max", 0.03},
                                       {"busy_s_mean", 0.02},
                                       {"imbalance", 1.5}});
  return c;
}

ResultsFile cp_run() {
  ResultsFile f;
  f.path = "cp.h5";
  f.manifest_name = "cp";
  f.manifest_text = R"({"name": "cp", "baseline": "flash", "methods": []})";
  f.cells = {cp_cell(0, "flash", 1, 2048, 0.2), cp_cell(1, "ring", 2, 2048, 0.1), cp_cell(2, "striped", 2, 2048, 0.08),
             cp_cell(3, "flash", 1, 4096, 0.8), cp_cell(4, "ring", 2, 4096, 0.5)};
  f.expected_cells = 5;
  return f;
}

std::string report(const ResultsFile& f, ReportFormat fmt, const std::string& metric = "") {
  ReportOptions o;
  o.format = fmt;
  o.metric = metric;
  return render_report({f}, o);
}

}  // namespace

TEST_CASE("report: a context parallel table per shape, flash first, with speedup, comm and imbalance",
          "[report][context_parallel]") {
  const std::string md = report(cp_run(), ReportFormat::markdown);
  INFO(md);
  const auto first = md.find("context parallel — L2048 D64 H4/4 fp32 causal");
  const auto second = md.find("context parallel — L4096 D64 H4/4 fp32 causal");
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  CHECK(first < second);
  const std::string t1 = md.substr(first, second - first);
  CHECK_THAT(t1,
             Catch::Contains("| method  | ranks | latency (ms) | speedup vs flash (×) | comm MB/rank | comm share | "
                             "imbalance |"));
  // flash: 1 rank, speedup 1; ring: 0.2/0.1 = 2×, 2.5 MB, 0.01/(0.01+0.03) = 25%, imbalance 1.5.
  CHECK_THAT(t1, Catch::Contains("| flash   |     1 |"));
  CHECK_THAT(t1, Catch::Contains("|                 1.00 |            — |          — |         — |"));
  CHECK_THAT(t1, Catch::Contains("| ring    |     2 |"));
  CHECK_THAT(t1, Catch::Contains("|                 2.00 |          2.5 |        25% |      1.50 |"));
  CHECK_THAT(t1, Catch::Contains("|                 2.50 |          2.5 |        25% |      1.50 |"));  // striped
  CHECK(t1.find("flash") < t1.find("ring"));
  // The pivots of the counters work like any metric's.
  CHECK_THAT(report(cp_run(), ReportFormat::markdown, "imbalance"), Catch::Contains("imbalance by method and shape"));
  CHECK_THAT(report(cp_run(), ReportFormat::csv, "comm_bytes_per_rank"), Catch::Contains("ring,2500000,2500000"));
  // CSV stays one table; LaTeX gets the tables too.
  CHECK(report(cp_run(), ReportFormat::csv).find("context parallel") == std::string::npos);
  CHECK_THAT(report(cp_run(), ReportFormat::latex), Catch::Contains("context parallel"));
}

TEST_CASE("report: no context parallel table without distributed cells", "[report][context_parallel]") {
  ResultsFile f = cp_run();
  f.cells = {f.cells[0], f.cells[3]};
  CHECK(report(f, ReportFormat::markdown).find("context parallel") == std::string::npos);
}
