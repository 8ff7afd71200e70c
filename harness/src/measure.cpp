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

double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b) {
  const std::size_t n1 = a.size(), n2 = b.size(), n = n1 + n2;
  if (n1 < 3 || n2 < 3) return NAN;
  // Ranks of the pooled samples, ties sharing their average rank.
  std::vector<std::pair<double, int>> pooled;
  for (double x : a) pooled.emplace_back(x, 0);
  for (double x : b) pooled.emplace_back(x, 1);
  std::sort(pooled.begin(), pooled.end(), [](const auto& l, const auto& r) { return l.first < r.first; });
  double rank_sum_a = 0, ties = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && pooled[j].first == pooled[i].first) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;  // ranks i+1 … j
    for (std::size_t k = i; k < j; ++k)
      if (pooled[k].second == 0) rank_sum_a += rank;
    const double t = static_cast<double>(j - i);
    ties += t * t * t - t;
    i = j;
  }
  const double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2), dn = static_cast<double>(n);
  const double u = rank_sum_a - d1 * (d1 + 1) / 2;
  const double mean = d1 * d2 / 2;
  const double var = d1 * d2 / 12 * ((dn + 1) - ties / (dn * (dn - 1)));
  if (var <= 0) return 1.0;  // every sample equal
  const double z = std::max(0.0, std::abs(u - mean) - 0.5) / std::sqrt(var);
  return std::erfc(z / std::sqrt(2.0));
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

namespace {
// Decisions, identical on every rank once agreed.
enum Decision : int { go_on = 0, stop_timeout, stop_warmup, stop_max_samples, stop_noise, stop_time };

class FunctionSampler final : public Sampler {
 public:
  FunctionSampler(const std::function<void()>& once, CacheFlusher* flusher) : once_(once), flusher_(flusher) {}
  void warmup() override { once_(); }
  std::optional<double> sample(bool cold) override {
    if (cold && flusher_) flusher_->flush();
    const auto t0 = std::chrono::steady_clock::now();
    once_();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  const std::function<void()>& once_;
  CacheFlusher* flusher_;
};
}  // namespace

Measurement measure(Sampler& sampler, const TimingPolicy& policy) {
  using clock = std::chrono::steady_clock;
  auto seconds = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const auto cell_start = clock::now();
  auto over_timeout = [&] { return seconds(clock::now() - cell_start) > policy.timeout_s; };

  Measurement m;
  for (int i = 0; i < policy.warmup; ++i) {
    sampler.warmup();
    ++m.stats.warmup;
    int d = go_on;
    if (over_timeout())
      d = stop_timeout;
    else if (seconds(clock::now() - cell_start) > policy.max_time_s)
      d = stop_warmup;  // a warm-up longer than the sampling budget on its own says enough about the caches
    d = sampler.agree(d);
    if (d == stop_timeout) {
      m.stats.stop_reason = "timeout";
      return m;
    }
    if (d == stop_warmup) break;
  }
  const std::int64_t warmups = m.stats.warmup;

  const auto sampling_start = clock::now();
  std::int64_t discarded = 0;
  int d = go_on;
  while (d == go_on) {
    std::optional<double> t = sampler.sample(policy.cold_cache);
    if (t)
      m.samples.push_back(*t);
    else
      ++discarded;
    const auto n = static_cast<int>(m.samples.size());
    if (over_timeout())
      d = stop_timeout;
    else if (n + discarded >= policy.max_samples)
      d = stop_max_samples;
    else if (n >= policy.min_samples && median_rse(m.samples) <= policy.max_noise)
      d = stop_noise;
    else if (n >= policy.min_samples && seconds(clock::now() - sampling_start) >= policy.max_time_s)
      d = stop_time;
    d = sampler.agree(d);
  }
  m.stats = summarize(m.samples);
  m.stats.warmup = warmups;
  m.stats.discarded = discarded;
  m.stats.stop_reason = d == stop_timeout       ? "timeout"
                        : d == stop_max_samples ? "max_samples"
                        : d == stop_noise       ? "noise"
                                                : "time";
  m.stats.converged = m.stats.rse <= policy.max_noise;
  return m;
}

std::unique_ptr<Sampler> function_sampler(const std::function<void()>& once, CacheFlusher* flusher) {
  return std::make_unique<FunctionSampler>(once, flusher);
}

Measurement measure(const std::function<void()>& once, const TimingPolicy& policy, CacheFlusher* flusher) {
  return measure(*function_sampler(once, flusher), policy);
}

}  // namespace attnbench
