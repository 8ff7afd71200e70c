// The CUDA device backend: CUDA-event timing with launch overhead hidden behind a stream-holding kernel,
// L2 flushes for cold samples, batches for hot ones, throttled samples discarded, device state through
// NVML. How it works, and what it never changes: docs/gpu.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "attnbench/backend.hpp"
#include "attnbench/measure.hpp"
#include "harness/cuda/nvml.hpp"

namespace attnbench::cuda {

// Seconds the stream-holding kernel waits for the host's release before it gives up by itself (and the
// sample is discarded): enqueuing one sample takes microseconds, so only a plan that synchronises inside
// run() reaches it, and then the cell goes on without holding the stream instead of hanging.
inline constexpr double kHoldTimeoutS = 5.0;
// A hot sample is a batch of back-to-back runs lasting about this long (at most kMaxBatch runs), so that
// the event clock's ~0.5 µs resolution is far below the noise target.
inline constexpr double kHotBatchTargetS = 1e-3;
inline constexpr std::int64_t kMaxBatch = 1000;
// How long to let a throttled GPU recover before the next sample (NVBench's default).
inline constexpr double kThrottleRecoveryS = 0.05;

// A sample's batch size for hot runs: enough runs of `run_s` each to last kHotBatchTargetS, in [1, kMaxBatch].
std::int64_t hot_batch_size(double run_s);

struct DeviceResources;  // events, the pinned release flag, the L2 flush buffer (cuda_backend.cu)

// The SM clock now, in MHz; nullopt when unknown. The backend reads NVML; tests substitute their own.
using SmClockReader = std::function<std::optional<unsigned>()>;

class CudaBackend final : public DeviceBackend {
 public:
  CudaBackend();
  ~CudaBackend() override;

  int device_count(std::string* why) const override;
  void select(const Device& d) override;
  std::string environment(const Device& d) const override;
  Counters state(const Device& d, std::string* note) const override;
  void reset_peak(const Device& d) override;
  std::int64_t peak_bytes(const Device& d) const override;
  Measurement measure(Plan& plan, const Inputs& in, Tensor& out, const TimingPolicy& policy, const Device& d) override;
  std::unique_ptr<Sampler> sampler(Plan& plan, const Inputs& in, Tensor& out, const Device& d) override;
  void synchronize(const Device& d) override;

  // Bytes written before every cold sample: twice the device's L2.
  std::size_t flush_bytes(const Device& d);
  std::size_t l2_bytes(const Device& d);
  // The clock samples are judged against (reference_sm_clock of NVML's default and maximum), 0 if unknown.
  unsigned reference_sm_clock_mhz(const Device& d);
  // NVML's SM clock of `d`; a reader that always says "unknown" when NVML is absent.
  SmClockReader sm_clock_reader(const Device& d);
  // Samples whose stream-holding kernel timed out on `d` since the process started.
  std::int64_t hold_timeouts(const Device& d);

  // Made on first use (which makes `d` the current device), kept for the life of the process.
  DeviceResources& resources(const Device& d) const;

 private:
  mutable std::map<int, std::unique_ptr<DeviceResources>> devices_;
  std::int64_t base_bytes_ = 0;  // live device bytes at reset_peak
};

// Samples of work launched on cuda::stream(): each one timed by CUDA events with the stream held by a
// spinning kernel while the work is queued, so that host launch overhead lies outside the events. Cold
// samples flush the L2 first and time one run; hot samples time a batch of back-to-back runs and report
// the time per run. A sample during which the SM clock fell under 75% of the reference is discarded.
class CudaSampler final : public Sampler {
 public:
  CudaSampler(DeviceResources& res, std::function<void()> launch, SmClockReader sm_clock, unsigned reference_sm_mhz);
  void warmup() override;
  std::optional<double> sample(bool cold) override;

  std::int64_t batch() const { return batch_; }             // runs per hot sample (1 until known)
  bool holding() const { return hold_; }                    // false once a hold timed out in this cell
  std::int64_t hold_timeouts() const { return timeouts_; }  // in this sampler's life
  std::int64_t throttled() const { return throttled_; }     // samples discarded for the clock

 private:
  double time_unheld(std::int64_t runs);  // events around `runs` launches, no hold: warm-up and estimates
  DeviceResources& res_;
  std::function<void()> launch_;
  SmClockReader sm_clock_;
  unsigned reference_mhz_;
  bool primed_ = false;    // a run has loaded the plan's kernels
  double estimate_s_ = 0;  // the fastest warm-up run, for the hot batch size
  std::int64_t batch_ = 1;
  bool hold_ = true;
  std::int64_t timeouts_ = 0, throttled_ = 0;
  unsigned flush_value_ = 0;
};

// A kernel that keeps the device busy for `seconds` of its global timer (one thread block), launched on
// cuda::stream(): the known-duration work the backend's tests time.
void launch_busy_wait(double seconds);

}  // namespace attnbench::cuda
