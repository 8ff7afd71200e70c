// What the runner needs from a device other than the CPU. The CUDA backend (harness/cuda/) registers
// one when the build has CUDA; a build without it has none, and `--device cuda` says so.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attnbench/device.hpp"
#include "attnbench/manifest.hpp"
#include "attnbench/measure.hpp"
#include "attnbench/method.hpp"

namespace attnbench {

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  // Devices usable by this backend; 0 with `why` filled in when there are none.
  virtual int device_count(std::string* why) const = 0;
  // Makes `d` current for the calling thread; called before any plan of a cell is made.
  virtual void select(const Device& d) = 0;
  // Properties, driver and runtime versions, management-library state: a JSON object's text, recorded
  // once per result file under environment.device_info.
  virtual std::string environment(const Device& d) const = 0;
  // The device's state now (clocks, temperature, power, throttle reasons) as named numbers; what cannot
  // be read is left out and said in `note` (e.g. "NVML not found").
  virtual Counters state(const Device& d, std::string* note) const = 0;
  // Device memory high-water mark of the plans' allocations since reset_peak(), workspace included.
  virtual void reset_peak(const Device& d) = 0;
  virtual std::int64_t peak_bytes(const Device& d) const = 0;
  // Times plan.run under the policy with the device's clock. The plan has been prepared.
  virtual Measurement measure(Plan& plan, const Inputs& in, Tensor& out, const TimingPolicy& policy,
                              const Device& d) = 0;
  // The sampler measure() uses, for a caller that wraps it: the ranks of a distributed cell take the
  // slowest rank's time for every sample. References to plan, in and out are kept.
  virtual std::unique_ptr<Sampler> sampler(Plan& plan, const Inputs& in, Tensor& out, const Device& d) = 0;
  // Waits for every queued launch on `d`; throws std::runtime_error with the device's message on an error.
  virtual void synchronize(const Device& d) = 0;
};

void register_device_backend(Device::Kind kind, std::unique_ptr<DeviceBackend> backend);
DeviceBackend* device_backend(Device::Kind kind);  // null: this build has none

template <class B>
struct DeviceBackendRegistration {
  explicit DeviceBackendRegistration(Device::Kind kind) { register_device_backend(kind, std::make_unique<B>()); }
};

}  // namespace attnbench
