// NVML, the NVIDIA management library, loaded at run time (dlopen) for reading device state: clocks,
// temperature, power, clock-event (throttle) reasons. Read-only: no function that changes a setting is
// even looked up, so nothing here can alter clocks, power limits or persistence mode.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace attnbench::cuda {

// A sample is kept only while the SM clock is at least this fraction of the reference clock (NVBench's
// default throttle threshold): below it the GPU was throttling and the time says more about cooling than
// about the kernel.
inline constexpr double kThrottleThreshold = 0.75;

// The throttle-discard rule: true when `sm_mhz` is at least 75% of `reference_mhz`; true as well when the
// reference is unknown (0), since then nothing can be judged.
constexpr bool clock_ok(unsigned sm_mhz, unsigned reference_mhz) {
  // 4·sm >= 3·ref in integers: exactly 75% passes, 1 MHz less fails, no rounding of a float in between.
  return reference_mhz == 0 || 4ull * sm_mhz >= 3ull * reference_mhz;
}

// The clock a sample is compared with: the default applications clock where NVML reports one (data-centre
// GPUs), else the maximum SM clock; 0 when neither is known.
constexpr unsigned reference_sm_clock(std::optional<unsigned> default_applications_mhz,
                                      std::optional<unsigned> max_mhz) {
  if (default_applications_mhz && *default_applications_mhz > 0) return *default_applications_mhz;
  if (max_mhz && *max_mhz > 0) return *max_mhz;
  return 0;
}

// NVML's clock domains (nvmlClockType_t).
enum class Clock : int { graphics = 0, sm = 1, memory = 2, video = 3 };

class Nvml {
 public:
  using Handle = void*;  // nvmlDevice_t

  // Loads `library` and initialises NVML; on any failure available() is false and why() says what failed.
  explicit Nvml(const std::string& library = "libnvidia-ml.so.1");
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  bool available() const { return initialised_; }
  const std::string& why() const { return why_; }  // empty when available

  // The device whose PCI bus id is `bus_id` ("0000:3B:00.0", as cudaDeviceGetPCIBusId gives it); PCI
  // rather than an index, because CUDA and NVML may number devices differently.
  std::optional<Handle> device_by_pci_bus_id(const std::string& bus_id, std::string* why) const;

  std::string driver_version() const;  // "" when unknown
  std::string nvml_version() const;
  std::string name(Handle d) const;

  std::optional<unsigned> clock_mhz(Handle d, Clock c) const;                       // now
  std::optional<unsigned> max_clock_mhz(Handle d, Clock c) const;                   // the highest supported
  std::optional<unsigned> default_applications_clock_mhz(Handle d, Clock c) const;  // the board's default
  std::optional<unsigned> applications_clock_mhz(Handle d, Clock c) const;          // as currently set
  std::optional<unsigned> temperature_c(Handle d) const;                            // GPU die
  std::optional<double> power_w(Handle d) const;                                    // board draw now
  std::optional<double> enforced_power_limit_w(Handle d) const;
  std::optional<double> energy_j(Handle d) const;        // since the driver was loaded (Volta and later)
  std::optional<int> performance_state(Handle d) const;  // P0 = 0 … P15 = 15
  std::optional<bool> persistence_mode(Handle d) const;
  // nvmlClocksEventReason* bits (called throttle reasons before NVML 12.2): 0x1 idle, 0x2 applications
  // clock setting, 0x4 software power cap, 0x8 hardware slowdown, 0x10 sync boost, 0x20 software thermal,
  // 0x40 hardware thermal, 0x80 hardware power brake, 0x100 display clock setting.
  std::optional<std::uint64_t> clock_event_reasons(Handle d) const;

  // The state recorded before and after each cell's sampling (what cannot be read is left out):
  // sm_clock_mhz, mem_clock_mhz, temperature_c, power_w, clock_event_reasons, energy_j, pstate.
  std::vector<std::pair<std::string, double>> state(Handle d) const;

 private:
  struct Api;
  void* lib_ = nullptr;
  Api* api_ = nullptr;
  bool initialised_ = false;
  std::string why_;
};

// The process's NVML, loaded on first use and kept until exit.
const Nvml& nvml();

}  // namespace attnbench::cuda
