// The CUDA backend on a GPU: event timing of known-duration work (cold, hot, with host delay hidden), the
// hold's timeout, the L2 flush size, throttle discards, peak memory, device state and environment.
#include <cuda_runtime.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <thread>

#include "attnbench/backend.hpp"
#include "harness/cuda/cuda_backend.hpp"
#include "kernels/cuda/cuda_plan.hpp"

using namespace attnbench;
using namespace attnbench::cuda;

namespace {

const Device gpu{Device::Kind::cuda, 0};

CudaBackend& backend() {
  auto* b = dynamic_cast<CudaBackend*>(device_backend(Device::Kind::cuda));
  REQUIRE(b != nullptr);
  b->select(gpu);
  return *b;
}

TimingPolicy policy(bool cold, int min_samples = 10, double max_time_s = 1.0) {
  TimingPolicy p;
  p.warmup = 2;
  p.min_samples = min_samples;
  p.max_samples = 500;
  p.max_noise = 0.005;
  p.max_time_s = max_time_s;
  p.cold_cache = cold;
  p.timeout_s = 60;
  return p;
}

// A sampler as the backend makes one for a cell, over `launch` instead of a plan.
CudaSampler sampler_for(CudaBackend& b, std::function<void()> launch) {
  return CudaSampler(b.resources(gpu), std::move(launch), b.sm_clock_reader(gpu), b.reference_sm_clock_mhz(gpu));
}

std::map<std::string, double> as_map(const Counters& c) { return {c.begin(), c.end()}; }

// A plan that holds a device buffer and keeps the device busy for a known time.
class BusyPlan final : public Plan {
 public:
  BusyPlan(double seconds, std::size_t bytes) : seconds_(seconds), bytes_(bytes) {}
  void prepare(const Inputs&) override { buffer_ = DeviceBuffer(bytes_); }
  void run(const Inputs&, Tensor&) override { launch_busy_wait(seconds_); }

 private:
  double seconds_;
  std::size_t bytes_;
  DeviceBuffer buffer_;
};

}  // namespace

TEST_CASE("cuda timing: a 2 ms busy-wait measures 2 ms, cold and hot", "[cuda_backend]") {
  CudaBackend& b = backend();
  for (const bool cold : {true, false}) {
    INFO((cold ? "cold" : "hot"));
    CudaSampler s = sampler_for(b, [] { launch_busy_wait(2e-3); });
    const Measurement m = measure(s, policy(cold));
    CHECK(m.stats.samples >= 10);
    CHECK(m.stats.median_s >= 2.0e-3);
    CHECK(m.stats.median_s < 2.0e-3 * 1.02 + 10e-6);
    CHECK(s.batch() == 1);  // 2 ms is longer than the hot batch target
    CHECK(s.hold_timeouts() == 0);
  }
}

TEST_CASE("cuda timing: host time before the launch stays outside the events", "[cuda_backend]") {
  CudaBackend& b = backend();
  // Every run spends 3 ms on the host before a 100 µs kernel: unheld, each sample would take 3.1 ms.
  const auto slow_launch = [] {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    launch_busy_wait(100e-6);
  };
  CudaSampler s = sampler_for(b, slow_launch);
  const Measurement m = measure(s, policy(true, 5, 0.3));
  INFO("median " << m.stats.median_s * 1e6 << " us");
  CHECK(m.stats.median_s >= 100e-6);
  CHECK(m.stats.median_s < 150e-6);
  CHECK(s.holding());
}

TEST_CASE("cuda timing: hot samples time a batch of short runs and report the time per run", "[cuda_backend]") {
  CudaBackend& b = backend();
  CudaSampler s = sampler_for(b, [] { launch_busy_wait(20e-6); });
  const Measurement m = measure(s, policy(false));
  INFO("median " << m.stats.median_s * 1e6 << " us, batch " << s.batch());
  CHECK(s.batch() >= 10);
  CHECK(s.batch() <= 50);
  CHECK(m.stats.median_s >= 20e-6);
  CHECK(m.stats.median_s < 30e-6);
}

TEST_CASE("cuda timing: a run that synchronises inside times the hold out once instead of hanging", "[cuda_backend]") {
  CudaBackend& b = backend();
  const std::int64_t before = b.hold_timeouts(gpu);
  const auto syncing = [] {
    launch_busy_wait(50e-6);
    check(cudaStreamSynchronize(stream()), "test");
  };
  CudaSampler s = sampler_for(b, syncing);
  TimingPolicy p = policy(true, 3, 0.2);
  p.warmup = 1;
  const auto t0 = std::chrono::steady_clock::now();
  const Measurement m = measure(s, p);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(s.hold_timeouts() == 1);
  CHECK_FALSE(s.holding());
  CHECK(m.stats.discarded >= 1);
  CHECK(m.stats.samples >= 3);
  CHECK(b.hold_timeouts(gpu) == before + 1);
  CHECK(took < kHoldTimeoutS + 5);
  CHECK(m.stats.median_s >= 50e-6);
}

TEST_CASE("cuda backend: the L2 flush buffer is twice the L2", "[cuda_backend]") {
  CudaBackend& b = backend();
  int l2 = 0;
  REQUIRE(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, gpu.index) == cudaSuccess);
  CHECK(l2 > 0);
  CHECK(b.l2_bytes(gpu) == static_cast<std::size_t>(l2));
  CHECK(b.flush_bytes(gpu) == 2 * static_cast<std::size_t>(l2));
}

TEST_CASE("cuda timing: samples under 75% of the reference clock are discarded and counted", "[cuda_backend]") {
  CudaBackend& b = backend();
  int calls = 0;
  // Every other sample reads 600 MHz against a reference of 1000 MHz: 60% < 75%, discarded.
  const SmClockReader fake = [&calls] { return std::optional<unsigned>(calls++ % 2 == 0 ? 1000u : 600u); };
  CudaSampler s(
      b.resources(gpu), [] { launch_busy_wait(50e-6); }, fake, 1000);
  TimingPolicy p = policy(true, 10, 10.0);
  p.max_noise = -1;  // never converge: sampling stops at max_samples, samples and discards together
  p.max_samples = 20;
  const Measurement m = measure(s, p);
  CHECK(calls == 20);
  CHECK(m.stats.discarded == 10);
  CHECK(m.samples.size() == 10);
  CHECK(s.throttled() == 10);
  CHECK(m.stats.stop_reason == "max_samples");
}

TEST_CASE("cuda backend: measure() times a Plan and peak_bytes counts its device buffers", "[cuda_backend]") {
  CudaBackend& b = backend();
  b.reset_peak(gpu);
  BusyPlan plan(200e-6, std::size_t{3} << 20);
  Inputs in;
  Tensor out;
  plan.prepare(in);
  const Measurement m = b.measure(plan, in, out, policy(true, 5, 0.3), gpu);
  b.synchronize(gpu);
  CHECK(m.stats.median_s >= 200e-6);
  CHECK(m.stats.median_s < 260e-6);
  CHECK(b.peak_bytes(gpu) == (std::int64_t{3} << 20));
}

TEST_CASE("cuda backend: state has clocks, temperature and power, environment has properties and NVML",
          "[cuda_backend]") {
  CudaBackend& b = backend();
  std::string note;
  const auto s = as_map(b.state(gpu, &note));
  INFO("note: " << note);
  CHECK(note.empty());
  REQUIRE(s.count("sm_clock_mhz"));
  CHECK(s.at("sm_clock_mhz") > 0);
  REQUIRE(s.count("mem_clock_mhz"));
  CHECK(s.at("mem_clock_mhz") > 0);
  REQUIRE(s.count("temperature_c"));
  CHECK(s.at("temperature_c") > 0);
  CHECK(s.at("temperature_c") < 120);
  REQUIRE(s.count("power_w"));
  CHECK(s.at("power_w") > 0);
  CHECK(s.count("clock_event_reasons"));
  CHECK(s.count("hold_timeouts"));
  CHECK(b.reference_sm_clock_mhz(gpu) > 0);

  const json e = json::parse(b.environment(gpu));
  INFO(e.dump(1));
  CHECK_FALSE(e.value("name", std::string()).empty());
  CHECK(e.value("l2_flush_bytes", std::size_t{0}) == 2 * e.value("l2_cache_bytes", std::size_t{0}));
  CHECK(e.contains("cuda_runtime_version"));
  CHECK(e.contains("cuda_driver_version"));
  CHECK(e.contains("compute_capability"));
  REQUIRE(e.contains("nvml"));
  CHECK(e["nvml"].value("available", false));
  CHECK_FALSE(e["nvml"].value("driver_version", std::string()).empty());
  CHECK(e["nvml"].contains("persistence_mode"));
  CHECK(e["nvml"].contains("enforced_power_limit_w"));
  CHECK(e["nvml"].contains("max_sm_clock_mhz"));
  CHECK(e["nvml"].value("reference_sm_clock_mhz", 0u) == b.reference_sm_clock_mhz(gpu));
}
