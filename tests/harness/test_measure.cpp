// The timing policy: warm-up count, minimum samples, noise stop, time cap, timeout, statistics.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <thread>

#include "attnbench/measure.hpp"

using namespace attnbench;

TEST_CASE("summary statistics of known samples", "[measure]") {
  const std::vector<double> s{3, 1, 2, 5, 4};
  const TimingStats t = summarize(s);
  CHECK(t.samples == 5);
  CHECK(t.median_s == 3);
  CHECK(t.mean_s == 3);
  CHECK(t.min_s == 1);
  CHECK(t.max_s == 5);
  CHECK(t.stddev_s == Approx(std::sqrt(2.5)));
  // MAD of {3,1,2,5,4} around 3 is 1: rse = 1.2533 * 1.4826 * 1 / sqrt(5) / 3.
  CHECK(t.rse == Approx(1.2533 * 1.4826 / std::sqrt(5.0) / 3));
  CHECK(median_rse({2.0, 2.0, 2.0}) == 0);
}

TEST_CASE("warm-up runs are untimed and the minimum sample count is honoured", "[measure]") {
  int calls = 0;
  TimingPolicy p;
  p.warmup = 3;
  p.min_samples = 7;
  p.max_noise = 1.0;  // any spread passes
  const Measurement m = measure([&] { ++calls; }, p, nullptr);
  CHECK(m.stats.warmup == 3);
  CHECK(m.samples.size() == 7);
  CHECK(calls == 10);
  CHECK(m.stats.stop_reason == "noise");
  CHECK(m.stats.converged);
}

TEST_CASE("sampling stops at the time cap when the noise target is out of reach", "[measure]") {
  TimingPolicy p;
  p.warmup = 0;
  p.min_samples = 3;
  p.max_noise = 1e-6;
  p.max_time_s = 0.05;
  int i = 0;
  // Alternating 1 ms and 3 ms: the median's error never gets near 1e-6.
  const Measurement m =
      measure([&] { std::this_thread::sleep_for(std::chrono::milliseconds(++i % 2 ? 1 : 3)); }, p, nullptr);
  CHECK(m.stats.stop_reason == "time");
  CHECK_FALSE(m.stats.converged);
  CHECK(m.samples.size() >= 3);
  CHECK(m.samples.size() < 60);
}

TEST_CASE("a cell past its timeout stops with stop_reason timeout", "[measure]") {
  TimingPolicy p;
  p.warmup = 1;
  p.min_samples = 100;
  p.timeout_s = 0.03;
  const Measurement m = measure([] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }, p, nullptr);
  CHECK(m.stats.stop_reason == "timeout");
  CHECK(m.samples.size() < 100);
}

TEST_CASE("the cache flusher covers twice the last-level cache", "[measure]") {
  CacheFlusher f;
  CHECK(f.bytes() == 2 * last_level_cache_bytes());
  CHECK(f.bytes() >= (1u << 20));
  f.flush();
}

TEST_CASE("mann_whitney_p: the normal approximation with tie and continuity corrections", "[measure]") {
  // Expected values from an independent computation (U by counting pairs, ties 0.5), as scipy's
  // mannwhitneyu(method="asymptotic", use_continuity=True) defines them.
  CHECK(mann_whitney_p({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}) == Approx(0.012185780355344818).epsilon(1e-12));
  CHECK(mann_whitney_p({1, 2, 2, 3, 7}, {2, 3, 4, 5, 5, 6}) == Approx(0.26669936890104307).epsilon(1e-12));
  const std::vector<double> fast{1.0, 1.1, 0.9, 1.05, 0.95, 1.02}, slow{1.01, 1.2, 1.3, 1.25, 1.22, 1.28};
  CHECK(mann_whitney_p(fast, slow) == Approx(0.020240570577077503).epsilon(1e-12));
  CHECK(mann_whitney_p(slow, fast) == mann_whitney_p(fast, slow));  // two-sided
  CHECK(mann_whitney_p(fast, fast) == 1.0);
  CHECK(mann_whitney_p({2, 2, 2}, {2, 2, 2}) == 1.0);  // nothing to rank
  CHECK(std::isnan(mann_whitney_p({1, 2}, {3, 4, 5})));
}
