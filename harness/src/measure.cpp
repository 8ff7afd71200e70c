// The CPU timing policy: warm-up, noise-targeted sampling, optional cache flush, summary statistics.
#include "attnbench/measure.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <string>

// Google Benchmark exports its summary statistics but does not declare them in benchmark.h; these are
// the exact signatures of the exported symbols (libbenchmark 1.7: src/statistics.h).
namespace benchmark {
double StatisticsMean(const std::vector<double>& v);
double StatisticsMedian(const std::vector<double>& v);
double StatisticsStdDev(const std::vector<double>& v);
}  // namespace benchmark

namespace attnbench {

double median_rse(const std::vector<double>& s) {
  if (s.size() < 2) return INFINITY;
  const double med = benchmark::StatisticsMedian(s);
  if (med <= 0) return INFINITY;
  std::vector<double> dev(s.size());
  std::transform(s.begin(), s.end(), dev.begin(), [med](double x) { return std::abs(x - med); });
  const double mad = benchmark::StatisticsMedian(dev);
  const double sigma = 1.4826 * mad;
  return 1.2533 * sigma / std::sqrt(static_cast<double>(s.size())) / med;
}

TimingStats summarize(const std::vector<double>& samples) {
  TimingStats t;
  t.samples = static_cast<std::int64_t>(samples.size());
  if (samples.empty()) return t;
  t.median_s = benchmark::StatisticsMedian(samples);
  t.mean_s = benchmark::StatisticsMean(samples);
  t.stddev_s = samples.size() > 1 ? benchmark::StatisticsStdDev(samples) : 0.0;
  auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
  t.min_s = *lo;
  t.max_s = *hi;
  t.rse = median_rse(samples);
  return t;
}

std::size_t last_level_cache_bytes() {
  // The highest cache index sysfs lists for cpu0 is the last level.
  std::size_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string s;
    if (!(f >> s)) continue;
    std::size_t v = std::stoull(s);
    if (s.back() == 'K') v <<= 10;
    if (s.back() == 'M') v <<= 20;
    best = std::max(best, v);
  }
  return best ? best : (std::size_t{32} << 20);
}

CacheFlusher::CacheFlusher() : buffer_(2 * last_level_cache_bytes()) {}

void CacheFlusher::flush() {
  // Write, then read back, every cache line so that the buffer evicts whatever the run left.
  for (std::size_t i = 0; i < buffer_.size(); i += 64) buffer_[i] = static_cast<char>(buffer_[i] + 1);
  char acc = 0;
  for (std::size_t i = 0; i < buffer_.size(); i += 64) acc = static_cast<char>(acc ^ buffer_[i]);
  sink_ = static_cast<char>(sink_ ^ acc);
  asm volatile("" : : "r"(sink_) : "memory");
}

Measurement measure(const std::function<void()>& once, const TimingPolicy& policy, CacheFlusher* flusher) {
  using clock = std::chrono::steady_clock;
  auto seconds = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const auto cell_start = clock::now();
  auto over_timeout = [&] { return seconds(clock::now() - cell_start) > policy.timeout_s; };

  Measurement m;
  for (int i = 0; i < policy.warmup; ++i) {
    once();
    ++m.stats.warmup;
    if (over_timeout()) {
      m.stats.stop_reason = "timeout";
      return m;
    }
    // A warm-up longer than the sampling budget on its own says enough about the caches.
    if (seconds(clock::now() - cell_start) > policy.max_time_s) break;
  }
  const std::int64_t warmups = m.stats.warmup;

  const auto sampling_start = clock::now();
  std::string reason;
  while (true) {
    if (flusher && policy.cold_cache) flusher->flush();
    const auto t0 = clock::now();
    once();
    const auto t1 = clock::now();
    m.samples.push_back(seconds(t1 - t0));
    const auto n = static_cast<int>(m.samples.size());
    if (over_timeout()) {
      reason = "timeout";
      break;
    }
    if (n >= policy.max_samples) {
      reason = "max_samples";
      break;
    }
    if (n < policy.min_samples) continue;
    if (median_rse(m.samples) <= policy.max_noise) {
      reason = "noise";
      break;
    }
    if (seconds(t1 - sampling_start) >= policy.max_time_s) {
      reason = "time";
      break;
    }
  }
  m.stats = summarize(m.samples);
  m.stats.warmup = warmups;
  m.stats.stop_reason = reason;
  m.stats.converged = m.stats.rse <= policy.max_noise;
  return m;
}

}  // namespace attnbench
