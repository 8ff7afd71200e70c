// Manifests: the JSON that names a suite; validation with JSON paths, and deterministic expansion into cells.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "attnbench/params.hpp"

namespace attnbench {

// Bad input: which file, where in it (a JSON path such as $.methods[1].axes.block_k[0]), what was expected.
class ManifestError : public std::runtime_error {
 public:
  ManifestError(std::string file, std::string json_path, std::string expected);
  const std::string& file() const { return file_; }
  const std::string& json_path() const { return json_path_; }
  const std::string& expected() const { return expected_; }

 private:
  std::string file_, json_path_, expected_;
};

struct TimingPolicy {
  int warmup = 2;            // untimed runs before the first sample
  int min_samples = 5;       // never fewer timed samples than this
  int max_samples = 1000;    // never more
  double max_noise = 0.02;   // stop once the relative standard error of the median is below this
  double max_time_s = 2.0;   // ...or once this much time was spent sampling
  bool cold_cache = false;   // flush the last-level cache before every timed sample
  double timeout_s = 120.0;  // a cell whose runs take longer than this in all is failed ("timeout")
  // A cell whose method calls (plan, runs, the scored run) have not returned after this long is failed
  // ("hung") by the watchdog and the run restarts past it; unless the manifest sets it, 2·timeout_s + 60.
  double hang_s = 300.0;
  // Whether the manifest set max_noise; where it did not, GPU cells use kGpuMaxNoise instead.
  bool max_noise_given = false;
};
inline constexpr double kGpuMaxNoise = 0.005;

struct MethodEntry {
  std::string label;  // unique in the manifest; defaults to the name
  std::string name;
  json params = json::object();
  json axes = json::object();
};

struct TaskEntry {
  std::string name;
  json params = json::object();
  json axes = json::object();
};

struct Manifest {
  std::string path;  // as given; "" when parsed from a string
  std::string text;  // verbatim, stored in every result file
  std::string name;
  std::uint64_t seed = 0;
  std::string device = "cpu";
  std::string baseline;  // a method label; speedups in reports are relative to it ("" = none)
  std::string output;    // default result file path ("" = results/<name>.h5)
  TimingPolicy timing;
  std::vector<MethodEntry> methods;
  std::vector<TaskEntry> tasks;
  // A suite of suites: {"name": ..., "include": ["cab.json", ...]} names other manifests (paths relative
  // to this one's folder, already checked to load) and has no methods or tasks of its own. Each included
  // suite runs as itself, into its own result file.
  std::vector<std::string> includes;
};

Manifest load_manifest(const std::string& path);                            // throws ManifestError
Manifest parse_manifest(const std::string& text, const std::string& path);  // throws ManifestError

// One method configuration on one task instance. Cells sharing `instance` share inputs and reference.
struct Cell {
  std::int64_t index = 0;
  std::int64_t instance = 0;
  std::string id;  // canonical and stable: label{params}|task{params}
  std::string method_label, method_name, task_name;
  Params method_params, task_params;
  std::uint64_t seed = 0;  // of the task instance: derived from the manifest seed, task name and params
};

// Tasks in manifest order, each task's axis grid in declaration order (last axis fastest), then methods
// in manifest order with their own grids: the same manifest always gives the same cells.
std::vector<Cell> expand(const Manifest& m);

}  // namespace attnbench
