// The SVG figures: each kind rendered from tests/data/figures_small.h5, parsed as XML, counted, and the CLI's
// --figures.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/cli.hpp"
#include "attnbench/figures.hpp"
#include "attnbench/report.hpp"

using namespace attnbench;
using attnbench::test::run_cli;
namespace fs = std::filesystem;

namespace {

CellRecord base_cell(std::int64_t index, const std::string& method, const std::string& task, std::int64_t len) {
  CellRecord c;
  c.index = index;
  c.method = method;
  c.method_name = method;
  c.family = "exact";
  c.method_params = "{}";
  c.task = task;
  c.task_kind = "efficiency";
  c.status = "ok";
  c.device = "cpu";
  c.threads = 2;
  c.batch = 1;
  c.heads = 8;
  c.kv_heads = 8;
  c.q_len = len;
  c.kv_len = len;
  c.head_dim = 64;
  c.value_dim = 64;
  c.dtype = "fp32";
  c.mask = "full";
  c.flops = 4.0 * 8 * static_cast<double>(len) * static_cast<double>(len) * 64;
  c.timing.samples = 3;
  c.timing.median_s = 1e-3;
  c.samples = {1e-3, 1e-3, 1e-3};
  c.peak_bytes = 1000000;
  return c;
}

// The small results file the figures are drawn from: needles for two methods (exact and a sliding window
// that misses the early needles at long lengths; one cell failed), a CAB-like length sweep over two
// patterns for three methods, a task measured at one length only (no curve), and RULER cells.
ResultsFile figures_run() {
  ResultsFile r;
  r.path = "tests/data/figures_small.h5";
  r.manifest_name = "figures_small";
  r.manifest_text = R"({"name": "figures_small", "baseline": "exact", "methods": []})";
  r.environment = "{}";
  std::int64_t i = 0;
  const std::vector<std::int64_t> lengths{1024, 2048, 4096};
  for (const std::string method : {"exact", "sliding_window"})
    for (const std::int64_t len : lengths)
      for (const int depth : {0, 50, 100}) {
        CellRecord c = base_cell(i++, method, "niah", len);
        c.task_kind = "retrieval";
        c.mask = method == "exact" ? "full" : "sliding_window";
        c.task_params = "{\"seq_len\":" + std::to_string(len) + ",\"depth\":" + std::to_string(depth) +
                        ",\"samples\":20,\"signal\":0.9}";
        double accuracy = 1.0;
        if (method == "sliding_window") accuracy = depth == 100 ? 1.0 : len == 1024 ? 0.5 : 0.0;
        c.metrics = {{"accuracy", accuracy}, {"accuracy_ci_low", 0}, {"accuracy_ci_high", 1}, {"trials", 20}};
        if (method == "sliding_window" && len == 4096 && depth == 50) {
          c.status = "failed";
          c.reason = "timeout";
          c.metrics.clear();
        }
        r.cells.push_back(c);
      }
  // Latency ∝ L² for exact, ∝ L for linear, flash in between; memory ∝ L for all but exact (∝ L²).
  for (const bool causal : {true, false})
    for (const std::int64_t len : {512, 1024, 2048, 4096})
      for (const std::string method : {"exact", "flash", "linear"}) {
        CellRecord c = base_cell(i++, method, "cab", len);
        c.causal = causal;
        c.mask = causal ? "causal" : "full";
        c.task_params = std::string("{\"pattern\":\"") + (causal ? "causal_self" : "noncausal_self") +
                        "\",\"seq_len\":" + std::to_string(len) + "}";
        const double l = static_cast<double>(len) / 512;
        c.timing.median_s = method == "exact" ? 1e-3 * l * l : method == "flash" ? 5e-4 * l * l : 2e-3 * l;
        c.samples = {c.timing.median_s, c.timing.median_s};
        c.peak_bytes = static_cast<std::int64_t>(method == "exact" ? 4e6 * l * l : 2e6 * l);
        r.cells.push_back(c);
      }
  for (const std::string method : {"exact", "flash"}) {
    CellRecord c = base_cell(i++, method, "lra", 4096);
    c.task_params = R"({"variant":"text"})";
    r.cells.push_back(c);
  }
  for (const std::string method : {"exact", "sliding_window"})
    for (const std::int64_t len : {4096, 8192})
      for (const std::string variant : {"single", "multikey"}) {
        CellRecord c = base_cell(i++, method, "ruler", len);
        c.task_kind = "retrieval";
        c.task_params = "{\"variant\":\"" + variant + "\",\"seq_len\":" + std::to_string(len) + "}";
        c.metrics = {{"accuracy", method == "exact" ? 1.0 : 0.25}, {"trials", 20}};
        r.cells.push_back(c);
      }
  r.expected_cells = static_cast<std::int64_t>(r.cells.size());
  return r;
}

std::string checked_in_path() { return std::string(ATTNBENCH_SOURCE_DIR) + "/tests/data/figures_small.h5"; }

// tests/data/figures_small.h5; ATTNBENCH_UPDATE_EXPECTED=1 writes it from figures_run() first.
ResultsFile checked_in() {
  if (std::getenv("ATTNBENCH_UPDATE_EXPECTED")) write_results(checked_in_path(), figures_run());
  REQUIRE(fs::exists(checked_in_path()));
  return read_results(checked_in_path());
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// A minimal well-formedness check: every start tag closed in order, quotes balanced inside tags, one root.
bool tags_balance(const std::string& xml, std::string* why) {
  std::vector<std::string> open;
  std::size_t roots = 0;
  for (std::size_t at = xml.find('<'); at != std::string::npos; at = xml.find('<', at)) {
    if (xml.compare(at, 2, "<?") == 0) {
      at = xml.find("?>", at);
      if (at == std::string::npos) return *why = "unterminated <?", false;
      continue;
    }
    if (xml.compare(at, 4, "<!--") == 0) {
      at = xml.find("-->", at);
      if (at == std::string::npos) return *why = "unterminated comment", false;
      continue;
    }
    std::size_t end = at + 1;
    char quote = 0;
    for (; end < xml.size() && (quote || xml[end] != '>'); ++end) {
      if (quote && xml[end] == quote)
        quote = 0;
      else if (!quote && (xml[end] == '"' || xml[end] == '\''))
        quote = xml[end];
      else if (!quote && xml[end] == '<')
        return *why = "'<' inside a tag at " + std::to_string(end), false;
    }
    if (end >= xml.size()) return *why = "unterminated tag", false;
    const std::string tag = xml.substr(at + 1, end - at - 1);
    const std::string name =
        tag.substr(tag[0] == '/' ? 1 : 0, tag.find_first_of(" \t\n/", 1) - (tag[0] == '/' ? 1 : 0));
    if (tag[0] == '/') {
      if (open.empty() || open.back() != name) return *why = "</" + name + "> closes nothing open", false;
      open.pop_back();
    } else if (tag.back() != '/') {
      if (open.empty()) ++roots;
      open.push_back(name);
    } else if (open.empty()) {
      ++roots;
    }
    at = end;
  }
  if (!open.empty()) return *why = "<" + open.back() + "> never closed", false;
  if (roots != 1) return *why = std::to_string(roots) + " root elements", false;
  return true;
}

// Parses with Python's XML parser where there is one (a real parser catches what the tag count cannot:
// bad entities, bad characters), and checks the root is <svg> in the SVG namespace.
void check_svg(const std::string& svg, const std::string& name) {
  INFO(name);
  std::string why;
  const bool balanced = tags_balance(svg, &why);
  INFO(why);
  CHECK(balanced);
  CHECK(
      svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\"",
                0) == 0);
  CHECK(svg.size() >= 7);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  struct stat st;
  if (::stat("/usr/bin/python3", &st) != 0) return;
  const fs::path dir = test::scratch_dir("svg");
  const fs::path file = dir / "figure.svg";
  std::ofstream(file, std::ios::binary) << svg;
  const std::string cmd =
      "/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; "
      "r = E.parse(sys.argv[1]).getroot(); "
      "sys.exit(0 if r.tag == '{http://www.w3.org/2000/svg}svg' else 3)\" '" +
      file.string() + "' 2>'" + (dir / "err").string() + "'";
  const int status = std::system(cmd.c_str());
  INFO(test::slurp(dir / "err"));
  CHECK(status == 0);
  fs::remove_all(dir);
}

// The points="x,y x,y ..." of the n-th polyline.
std::vector<std::pair<double, double>> polyline_points(const std::string& svg, std::size_t n) {
  std::size_t at = 0;
  for (std::size_t k = 0; k <= n; ++k) at = svg.find("<polyline", at + 1);
  at = svg.find("points=\"", at) + 8;
  std::istringstream in(svg.substr(at, svg.find('"', at) - at));
  std::vector<std::pair<double, double>> points;
  for (std::string xy; in >> xy;) {
    const auto comma = xy.find(',');
    points.emplace_back(std::stod(xy.substr(0, comma)), std::stod(xy.substr(comma + 1)));
  }
  return points;
}

}  // namespace

TEST_CASE("figures: the checked-in results file is the one the test builds", "[figures]") {
  const ResultsFile stored = checked_in();
  const ResultsFile built = figures_run();
  REQUIRE(stored.cells.size() == built.cells.size());
  for (const auto& make : {needle_heatmaps, latency_figures, memory_figures}) {
    const auto a = make({stored}), b = make({built});
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].svg == b[i].svg);
  }
}

TEST_CASE("figures: a needle heatmap per method, depth × length, red to green", "[figures]") {
  const auto maps = needle_heatmaps({checked_in()});
  REQUIRE(maps.size() == 2);
  CHECK(maps[0].file_name == "niah_heatmap_exact.svg");
  CHECK(maps[1].file_name == "niah_heatmap_sliding_window.svg");
  for (const Figure& f : maps) {
    check_svg(f.svg, f.file_name);
    CHECK(count(f.svg, "<rect class=\"cell\"") == 9);    // 3 depths × 3 lengths
    CHECK(count(f.svg, "class=\"tick-label\"") == 6);    // 3 lengths + 3 depths
    CHECK(count(f.svg, "class=\"legend-label\"") == 3);  // 0%, 50%, 100%
    CHECK(count(f.svg, "class=\"axis-title\"") == 2);
    CHECK_THAT(f.svg, Catch::Contains("url(#accuracy-scale)"));
    CHECK_THAT(f.svg, Catch::Contains(">needle depth (%)<") && Catch::Contains(">context length (tokens)<"));
  }
  const std::string& exact = maps[0].svg;
  CHECK_THAT(exact, Catch::Contains("<title>Needle in a haystack: exact</title>"));
  CHECK(count(exact, "fill=\"#1a9850\"") == 9);  // accuracy 1: green
  const std::string& window = maps[1].svg;
  CHECK(count(window, "fill=\"#1a9850\"") == 3);  // depth 100 at every length
  CHECK(count(window, "fill=\"#d73027\"") == 3);  // accuracy 0: red (2K at depths 0 and 50, 4K at depth 0)
  CHECK(count(window, "fill=\"#fadc3c\"") == 2);  // accuracy 0.5 at 1K: yellow
  CHECK(count(window, "fill=\"#d9d9d9\"") == 1);  // the failed cell: grey
  CHECK_THAT(window, Catch::Contains("<title>4K, depth 50%: failed</title>"));
  CHECK(count(window, "class=\"value\"") == 8);  // numbers in every cell that has one
  // Rows run from depth 0 at the top: the 0% label is above the 100% label.
  const auto y_of = [&](const std::string& label) {
    const auto at = window.rfind("y=\"", window.find(">" + label + "</text>"));
    return std::stod(window.substr(at + 3));
  };
  CHECK(y_of("0%") < y_of("50%"));
  CHECK(y_of("50%") < y_of("100%"));
}

TEST_CASE("figures: latency and memory against length on log-log axes, one line per method", "[figures]") {
  const ResultsFile r = checked_in();
  const auto latency = latency_figures({r});
  const auto memory = memory_figures({r});
  // Two CAB patterns; lra (one length) and the retrieval tasks have no curve.
  REQUIRE(latency.size() == 2);
  REQUIRE(memory.size() == 2);
  CHECK(latency[0].file_name == "latency_cab_D64_H8_8_fp32_causal.svg");
  CHECK(latency[1].file_name == "latency_cab_D64_H8_8_fp32.svg");
  CHECK(memory[0].file_name == "memory_cab_D64_H8_8_fp32_causal.svg");
  for (const auto* figures : {&latency, &memory})
    for (const Figure& f : *figures) {
      check_svg(f.svg, f.file_name);
      CHECK(count(f.svg, "<polyline class=\"series\"") == 3);
      CHECK(count(f.svg, "<circle class=\"point\"") == 12);  // 3 methods × 4 lengths
      CHECK(count(f.svg, "<g class=\"legend-entry\">") == 3);
      CHECK_THAT(f.svg, Catch::Contains(">exact</text>") && Catch::Contains(">flash</text>") &&
                            Catch::Contains(">linear</text>"));
      CHECK_THAT(f.svg, Catch::Contains(">512</text>") && Catch::Contains(">4K</text>"));
    }
  CHECK_THAT(latency[0].svg, Catch::Contains("median latency (ms), log scale"));
  CHECK_THAT(memory[0].svg, Catch::Contains("peak memory (MB), log scale"));
  // Log-log: lengths doubling are equal steps right, and exact's L² latency equal steps up, each twice the
  // step of linear's L latency.
  const auto exact = polyline_points(latency[0].svg, 0), linear = polyline_points(latency[0].svg, 2);
  REQUIRE(exact.size() == 4);
  REQUIRE(linear.size() == 4);
  for (std::size_t i = 1; i < 4; ++i) {
    CHECK(exact[i].first - exact[i - 1].first == Approx(exact[1].first - exact[0].first).margin(0.15));
    CHECK(exact[i].second < exact[i - 1].second);  // larger values are higher up
    CHECK(exact[i].second - exact[i - 1].second == Approx(2 * (linear[i].second - linear[i - 1].second)).margin(0.25));
  }
}

TEST_CASE("figures: the same input gives the same bytes", "[figures]") {
  const ResultsFile r = figures_run();
  for (const auto& make : {needle_heatmaps, latency_figures, memory_figures}) {
    const auto a = make({r}), b = make({r});
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].svg == b[i].svg);
  }
}

TEST_CASE("figures: file names are sanitized and unique", "[figures]") {
  CHECK(sanitize_file_name("flash block_k=64 / D64 H8/8") == "flash_block_k_64_D64_H8_8");
  CHECK(sanitize_file_name("../../etc/passwd") == "etc_passwd");
  CHECK(sanitize_file_name("L1×4096") == "L1_4096");
  CHECK(sanitize_file_name("") == "figure");
  // Two runs of differently named manifests: a run name in front of each method, so two heatmaps each.
  ResultsFile a = figures_run(), b = figures_run();
  b.manifest_name = "figures_bf16";
  const auto maps = needle_heatmaps({a, b});
  REQUIRE(maps.size() == 4);
  CHECK(maps[2].file_name == "niah_heatmap_figures_bf16_exact.svg");
  // Labels that sanitize alike still get files of their own.
  ResultsFile c = figures_run();
  for (CellRecord& cell : c.cells)
    if (cell.method == "sliding_window") cell.method = "exact!";
  const auto clash = needle_heatmaps({c});
  REQUIRE(clash.size() == 2);
  CHECK(clash[0].file_name == "niah_heatmap_exact.svg");
  CHECK(clash[1].file_name == "niah_heatmap_exact-2.svg");
}

TEST_CASE("figures: attnbench report --figures DIR writes every figure and the retrieval tables", "[figures]") {
  const fs::path dir = test::scratch_dir("figures");
  const fs::path out = dir / "figs";
  const auto r = run_cli("report tests/data/figures_small.h5 --figures '" + out.string() + "'", dir);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("| method"));  // the table still goes to stdout
  const std::vector<std::string> expected{"niah_heatmap_exact.svg",
                                          "niah_heatmap_sliding_window.svg",
                                          "latency_cab_D64_H8_8_fp32_causal.svg",
                                          "latency_cab_D64_H8_8_fp32.svg",
                                          "memory_cab_D64_H8_8_fp32_causal.svg",
                                          "memory_cab_D64_H8_8_fp32.svg",
                                          "ruler.md",
                                          "ruler.tex",
                                          "ruler.csv",
                                          "niah.md",
                                          "niah.tex",
                                          "niah.csv"};
  for (const std::string& name : expected) {
    CHECK(fs::exists(out / name));
    CHECK_THAT(r.err, Catch::Contains("wrote " + (out / name).string() + "\n"));
  }
  CHECK_THAT(r.err, Catch::Contains("12 file(s) in "));
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(out)) files += entry.is_regular_file();
  CHECK(files == expected.size());
  // What the CLI wrote is what the library renders.
  const ResultsFile stored = read_results(checked_in_path());
  CHECK(test::slurp(out / "niah_heatmap_exact.svg") == needle_heatmaps({stored})[0].svg);
  CHECK_THAT(test::slurp(out / "ruler.csv"), Catch::Contains("sliding_window,25,"));
  // A second run over the same directory gives the same bytes.
  const std::string before = test::slurp(out / "latency_cab_D64_H8_8_fp32.svg");
  REQUIRE(run_cli("report tests/data/figures_small.h5 --figures '" + out.string() + "'", dir).code == 0);
  CHECK(test::slurp(out / "latency_cab_D64_H8_8_fp32.svg") == before);
  fs::remove_all(dir);
}
