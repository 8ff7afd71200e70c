// Tables from result files alone: a pure function, the same bytes for the same inputs.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attnbench/results.hpp"

namespace attnbench {

enum class ReportFormat { markdown, latex, csv };
ReportFormat parse_report_format(const std::string& s);  // "md", "latex", "csv"; throws invalid_argument

struct ReportOptions {
  ReportFormat format = ReportFormat::markdown;
  // "" = the summary table (followed, in Markdown and LaTeX, by a "context parallel" table per shape when
  // the files hold distributed cells); "efficiency_length", "ruler", "niah" = those tables; otherwise a
  // pivot of that metric, the distributed counters (imbalance, comm_bytes_per_rank, …) included (see
  // docs/report.md)
  std::string metric;
  // "" = speedups against each file's manifest baseline, within that file; a method label = against that
  // method's cell of the same task instance in any of the files (e.g. torch_flash from
  // baselines/external/torch_sdpa.py beside attnbench's own file). Throws std::invalid_argument when no
  // file has an ok cell of that label.
  std::string baseline;
};

// Throws std::invalid_argument for a metric no cell has.
std::string render_report(const std::vector<ResultsFile>& files, const ReportOptions& opts);

struct CompareOptions {
  ReportFormat format = ReportFormat::markdown;
  double threshold = 0.01;  // |B/A − 1| up to this is "the same"
};
struct Comparison {
  std::string text;          // the table, caption first
  std::int64_t compared = 0;  // cells ok in both files
  std::int64_t over = 0;      // of those, |B/A − 1| above the threshold
  double max_delta = 0;       // the largest |B/A − 1|
};
// The cells of `b` against the cells of `a` with the same id (two runs of one manifest, before and after a
// change, or twice for repeatability): both medians, B/A − 1, the Mann–Whitney U test's p-value of their
// samples, and a verdict (docs/report.md, "Comparing two runs"). Throws std::invalid_argument when the
// files have no cell in common.
Comparison compare_results(const ResultsFile& a, const ResultsFile& b, const CompareOptions& opts);

// Whether some cell of the files belongs to the task: the retrieval tables exist only then.
bool has_task(const std::vector<ResultsFile>& files, const std::string& task);

// Pieces the tables share with the figures (figures.cpp), so both name methods and patterns alike.
namespace report_detail {

// "L1024 D64 H8/8 fp32 causal"; "L1×4096" for cross attention (docs/report.md, "Shape").
std::string shape_text(const CellRecord& c);
// The shape without its length: "D64 H8/8 fp32 causal".
std::string pattern_text(std::string shape);
// Within one file: the label, plus the parameters that tell apart a label's configurations.
std::map<const CellRecord*, std::string> method_names(const ResultsFile& f);
// Whether the files come from manifests with different names (then a run name goes before a method).
bool several_runs(const std::vector<ResultsFile>& files);
// The task parameters as JSON text without the named keys (the text itself when it is not an object).
std::string params_without(const std::string& task_params, const std::vector<std::string>& keys);
// A cell's length: the task parameter seq_len when there is one, else the longer of q_len and kv_len.
std::int64_t cell_length(const CellRecord& c);
// 4096 -> "4K", 1048576 -> "1M", 1000 -> "1000".
std::string length_text(std::int64_t n);
// Colliding headers get " name=value" for the parameters (JSON objects in key_params[i].second) whose
// values differ among the columns they collide with.
void disambiguate(std::vector<std::string>& headers,
                  const std::vector<std::pair<std::string, std::string>>& key_params);

}  // namespace report_detail

}  // namespace attnbench

// The CLI's report command reaches the figures through this header.
#include "attnbench/figures.hpp"
