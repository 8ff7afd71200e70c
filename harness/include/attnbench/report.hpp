// Tables from result files alone: a pure function, the same bytes for the same inputs.
#pragma once
#include <string>
#include <vector>

#include "attnbench/results.hpp"

namespace attnbench {

enum class ReportFormat { markdown, latex, csv };
ReportFormat parse_report_format(const std::string& s);  // "md", "latex", "csv"; throws invalid_argument

struct ReportOptions {
  ReportFormat format = ReportFormat::markdown;
  std::string metric;  // "" = the summary table; otherwise a pivot of that metric (see docs/report.md)
};

// Throws std::invalid_argument for a metric no cell has.
std::string render_report(const std::vector<ResultsFile>& files, const ReportOptions& opts);

}  // namespace attnbench
