// Result files: one HDF5 file per run, one record per cell (schema in results/README.md).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "attnbench/measure.hpp"
#include "attnbench/params.hpp"
#include "attnbench/task.hpp"

namespace attnbench {

inline constexpr const char* kSchemaVersion = "attnbench-results/1";

struct CellRecord {
  std::int64_t index = 0;
  std::string id;
  std::string method;       // label
  std::string method_name;  // registered name
  std::string family;
  std::string method_params;  // JSON object text
  std::string task;
  std::string task_kind;    // "efficiency" or "retrieval"
  std::string task_params;  // JSON object text
  std::uint64_t seed = 0;
  std::string status;  // "ok", "failed" or "unsupported"
  std::string reason;  // why, for failed and unsupported
  std::string device;  // "cpu", "cuda:0"
  std::int64_t threads = 0;
  // The problem
  std::int64_t batch = 0, heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, head_dim = 0, value_dim = 0;
  std::string dtype, mask;
  bool causal = false;
  double flops = 0, bytes = 0;
  // Measurement
  TimingStats timing;
  std::vector<double> samples;  // seconds
  std::int64_t peak_bytes = 0;  // heap high-water mark of plan + runs, above what was live before
  Metrics metrics;
  double started_unix = 0, wall_s = 0;  // when the cell started, how long it took in all
};

struct ResultsFile {
  std::string path;
  std::string schema_version = kSchemaVersion;
  std::string manifest_text;
  std::string manifest_name;
  std::string manifest_path;
  std::string environment;          // JSON object text (see harness/environment.hpp)
  std::int64_t expected_cells = 0;  // how many cells the manifest (or this shard of it) expands to
  std::string shard;                // "I/N" when the run was one shard of N (attnbench run --shard); "" otherwise
  std::vector<CellRecord> cells;
};

// Unreadable file, not HDF5, not an attnbench result, or a schema this build cannot read.
class ResultsError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Writes the whole file to PATH.tmp and renames it over PATH: a crash at any point leaves either the
// previous complete file or the new one, never a torn one.
void write_results(const std::string& path, const ResultsFile& r);
ResultsFile read_results(const std::string& path);  // throws ResultsError

}  // namespace attnbench
