// SVG figures from result files alone: needle heatmaps and log-log scaling curves, the same bytes every time.
#pragma once
#include <string>
#include <vector>

#include "attnbench/results.hpp"

namespace attnbench {

struct Figure {
  std::string file_name;  // sanitized, unique among the figures of one call: "niah_heatmap_flash.svg"
  std::string title;
  std::string svg;  // a complete SVG 1.1 document
};

// One needle heatmap per method (cells of task `niah`: depth × length, accuracy red→yellow→green).
std::vector<Figure> needle_heatmaps(const std::vector<ResultsFile>& files);
// Per pattern (task plus task parameters without seq_len/kv_len) with at least two lengths: median latency
// (ms) and peak memory (MB) against length on log-log axes, one line per method. Retrieval tasks are left
// out (their cells time a scoring pass, not a method alone).
std::vector<Figure> latency_figures(const std::vector<ResultsFile>& files);
std::vector<Figure> memory_figures(const std::vector<ResultsFile>& files);

// Every figure above, plus the retrieval tables (ruler.{md,tex,csv}, niah.{md,tex,csv}) when the files have
// cells of those tasks, written into DIR (created when missing). Returns the paths written, in order.
// Throws std::runtime_error when a file cannot be written.
std::vector<std::string> write_figures(const std::vector<ResultsFile>& files, const std::string& dir);

// "flash block_k=64 / D64 H8/8" -> "flash_block_k_64_D64_H8_8": letters, digits, '.', '-' and '_' only.
std::string sanitize_file_name(const std::string& s);

}  // namespace attnbench
