// The timing policy on the CPU: warm-up, then samples until the median is precise enough or time is up.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnbench/manifest.hpp"

namespace attnbench {

struct TimingStats {
  std::int64_t warmup = 0;
  std::int64_t samples = 0;
  double median_s = 0, mean_s = 0, min_s = 0, max_s = 0, stddev_s = 0;
  double rse = 0;           // relative standard error of the median (see median_rse)
  bool converged = false;   // rse <= max_noise when sampling stopped
  std::string stop_reason;  // "noise", "time", "max_samples" or "timeout"
  std::int64_t discarded = 0;  // samples thrown away (GPU: the SM clock fell under 75% of its default)
};

// Relative standard error of the median of `s`: 1.2533 · 1.4826 · MAD / (√n · median). The MAD-based
// sigma is robust to the few slow outliers that timing samples always have; 1.2533 = √(π/2) is the
// asymptotic ratio of the median's standard error to the mean's for a normal distribution.
double median_rse(const std::vector<double>& s);

TimingStats summarize(const std::vector<double>& samples);

// Two-sided p-value of the Mann–Whitney U test that samples `a` and `b` come from one distribution: the
// normal approximation with tie and continuity corrections (as Google Benchmark's tools/compare.py reads
// scipy's). NaN when either has fewer than 3 samples; the approximation is rough below about 8 each.
double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b);

// Writes over a buffer twice the size of the last-level cache, evicting whatever a timed run left there.
class CacheFlusher {
 public:
  CacheFlusher();
  void flush();
  std::size_t bytes() const { return buffer_.size(); }

 private:
  std::vector<char> buffer_;
  char sink_ = 0;
};
std::size_t last_level_cache_bytes();

struct Measurement {
  TimingStats stats;
  std::vector<double> samples;  // seconds, in the order taken
};

// Where samples come from. The CPU sampler times a function with the steady clock; the CUDA backend
// brackets launches with events; an MPI run takes the slowest rank's time for every sample.
class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual void warmup() = 0;  // one untimed run
  // One timed sample in seconds (flushing caches first when `cold`), or nullopt when it must be
  // discarded (and counted), e.g. because the device clock throttled during it.
  virtual std::optional<double> sample(bool cold) = 0;
  // Ranks of a distributed cell must stop sampling together: returns rank 0's decision, which every
  // rank then follows. A single process keeps its own.
  virtual int agree(int decision) { return decision; }
};

// Runs the sampler under the policy: warm-up, then samples until the median's relative standard error
// is at most max_noise (after min_samples), or max_time_s, or max_samples. A run that brings the cell's
// total past timeout_s ends sampling with stop_reason "timeout" (the caller records the cell as failed).
Measurement measure(Sampler& sampler, const TimingPolicy& policy);

// The CPU sampler: `once` timed with the steady clock, the last-level cache flushed for cold samples.
// It keeps references to `once` and `flusher`.
std::unique_ptr<Sampler> function_sampler(const std::function<void()>& once, CacheFlusher* flusher);
Measurement measure(const std::function<void()>& once, const TimingPolicy& policy, CacheFlusher* flusher);

}  // namespace attnbench
