// NVML through dlopen: the handful of read-only entry points the backend uses, declared here by their
// documented C signatures (nvml.h is not needed, and a machine without the driver still runs attnbench).
#include "harness/cuda/nvml.hpp"

#include <dlfcn.h>

namespace attnbench::cuda {

namespace {
using Ret = int;  // nvmlReturn_t; NVML_SUCCESS is 0
constexpr Ret kSuccess = 0;
}  // namespace

// Every NVML function this file calls. Optional ones stay null where the library lacks them (an older
// driver); only the first four are required.
struct Nvml::Api {
  Ret (*init)() = nullptr;
  Ret (*shutdown)() = nullptr;
  const char* (*error_string)(Ret) = nullptr;
  Ret (*handle_by_pci_bus_id)(const char*, Handle*) = nullptr;
  Ret (*driver_version)(char*, unsigned) = nullptr;
  Ret (*nvml_version)(char*, unsigned) = nullptr;
  Ret (*name)(Handle, char*, unsigned) = nullptr;
  Ret (*clock)(Handle, int, unsigned*) = nullptr;
  Ret (*max_clock)(Handle, int, unsigned*) = nullptr;
  Ret (*default_applications_clock)(Handle, int, unsigned*) = nullptr;
  Ret (*applications_clock)(Handle, int, unsigned*) = nullptr;
  Ret (*temperature)(Handle, int, unsigned*) = nullptr;
  Ret (*power_usage)(Handle, unsigned*) = nullptr;
  Ret (*enforced_power_limit)(Handle, unsigned*) = nullptr;
  Ret (*total_energy)(Handle, unsigned long long*) = nullptr;
  Ret (*performance_state)(Handle, int*) = nullptr;
  Ret (*persistence_mode)(Handle, int*) = nullptr;
  Ret (*clock_event_reasons)(Handle, unsigned long long*) = nullptr;
};

namespace {
template <class F>
void bind(void* lib, F& fn, const char* symbol) {
  fn = reinterpret_cast<F>(dlsym(lib, symbol));
}
}  // namespace

Nvml::Nvml(const std::string& library) {
  lib_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib_) {
    const char* err = dlerror();
    why_ = "NVML not found (" + (err ? std::string(err) : library) + ")";
    return;
  }
  api_ = new Api;
  Api& a = *api_;
  bind(lib_, a.init, "nvmlInit_v2");
  if (!a.init) bind(lib_, a.init, "nvmlInit");
  bind(lib_, a.shutdown, "nvmlShutdown");
  bind(lib_, a.error_string, "nvmlErrorString");
  bind(lib_, a.handle_by_pci_bus_id, "nvmlDeviceGetHandleByPciBusId_v2");
  if (!a.handle_by_pci_bus_id) bind(lib_, a.handle_by_pci_bus_id, "nvmlDeviceGetHandleByPciBusId");
  bind(lib_, a.driver_version, "nvmlSystemGetDriverVersion");
  bind(lib_, a.nvml_version, "nvmlSystemGetNVMLVersion");
  bind(lib_, a.name, "nvmlDeviceGetName");
  bind(lib_, a.clock, "nvmlDeviceGetClockInfo");
  bind(lib_, a.max_clock, "nvmlDeviceGetMaxClockInfo");
  bind(lib_, a.default_applications_clock, "nvmlDeviceGetDefaultApplicationsClock");
  bind(lib_, a.applications_clock, "nvmlDeviceGetApplicationsClock");
  bind(lib_, a.temperature, "nvmlDeviceGetTemperature");
  bind(lib_, a.power_usage, "nvmlDeviceGetPowerUsage");
  bind(lib_, a.enforced_power_limit, "nvmlDeviceGetEnforcedPowerLimit");
  bind(lib_, a.total_energy, "nvmlDeviceGetTotalEnergyConsumption");
  bind(lib_, a.performance_state, "nvmlDeviceGetPerformanceState");
  bind(lib_, a.persistence_mode, "nvmlDeviceGetPersistenceMode");
  // Renamed in NVML 12.2 ("clock events"); the old name stays exported for older drivers.
  bind(lib_, a.clock_event_reasons, "nvmlDeviceGetCurrentClocksEventReasons");
  if (!a.clock_event_reasons) bind(lib_, a.clock_event_reasons, "nvmlDeviceGetCurrentClocksThrottleReasons");
  if (!a.init || !a.shutdown || !a.error_string || !a.handle_by_pci_bus_id) {
    why_ = "NVML (" + library + ") lacks nvmlInit/nvmlShutdown/nvmlErrorString/nvmlDeviceGetHandleByPciBusId";
    return;
  }
  if (const Ret rc = a.init(); rc != kSuccess) {
    why_ =
        "NVML failed to initialise: " + std::string(a.error_string(rc)) + " (nvmlReturn_t " + std::to_string(rc) + ")";
    return;
  }
  initialised_ = true;
}

Nvml::~Nvml() {
  if (initialised_) api_->shutdown();
  delete api_;
  // The library stays loaded: unloading it at exit gains nothing and races its own exit handlers.
}

std::optional<Nvml::Handle> Nvml::device_by_pci_bus_id(const std::string& bus_id, std::string* why) const {
  if (!initialised_) {
    if (why) *why = why_;
    return std::nullopt;
  }
  Handle h = nullptr;
  if (const Ret rc = api_->handle_by_pci_bus_id(bus_id.c_str(), &h); rc != kSuccess) {
    if (why) *why = "NVML has no device at PCI bus id " + bus_id + ": " + api_->error_string(rc);
    return std::nullopt;
  }
  return h;
}

namespace {
std::string text_of(Ret (*fn)(char*, unsigned), bool ok) {
  if (!ok || !fn) return "";
  char buf[128] = {};
  return fn(buf, sizeof buf) == kSuccess ? std::string(buf) : "";
}

// Calls an NVML getter with one out-parameter of type T; nullopt when absent or unsupported.
template <class T, class F, class... Args>
std::optional<T> get(bool ok, F fn, Args... args) {
  if (!ok || !fn) return std::nullopt;
  T value{};
  if (fn(args..., &value) != kSuccess) return std::nullopt;
  return value;
}
}  // namespace

std::string Nvml::driver_version() const {
  return text_of(initialised_ ? api_->driver_version : nullptr, initialised_);
}
std::string Nvml::nvml_version() const { return text_of(initialised_ ? api_->nvml_version : nullptr, initialised_); }

std::string Nvml::name(Handle d) const {
  if (!initialised_ || !api_->name) return "";
  char buf[128] = {};
  return api_->name(d, buf, sizeof buf) == kSuccess ? std::string(buf) : "";
}

std::optional<unsigned> Nvml::clock_mhz(Handle d, Clock c) const {
  return get<unsigned>(initialised_, initialised_ ? api_->clock : nullptr, d, static_cast<int>(c));
}
std::optional<unsigned> Nvml::max_clock_mhz(Handle d, Clock c) const {
  return get<unsigned>(initialised_, initialised_ ? api_->max_clock : nullptr, d, static_cast<int>(c));
}
std::optional<unsigned> Nvml::default_applications_clock_mhz(Handle d, Clock c) const {
  return get<unsigned>(initialised_, initialised_ ? api_->default_applications_clock : nullptr, d, static_cast<int>(c));
}
std::optional<unsigned> Nvml::applications_clock_mhz(Handle d, Clock c) const {
  return get<unsigned>(initialised_, initialised_ ? api_->applications_clock : nullptr, d, static_cast<int>(c));
}
std::optional<unsigned> Nvml::temperature_c(Handle d) const {
  return get<unsigned>(initialised_, initialised_ ? api_->temperature : nullptr, d, 0 /* NVML_TEMPERATURE_GPU */);
}
std::optional<double> Nvml::power_w(Handle d) const {
  const auto mw = get<unsigned>(initialised_, initialised_ ? api_->power_usage : nullptr, d);
  return mw ? std::optional<double>(*mw / 1000.0) : std::nullopt;
}
std::optional<double> Nvml::enforced_power_limit_w(Handle d) const {
  const auto mw = get<unsigned>(initialised_, initialised_ ? api_->enforced_power_limit : nullptr, d);
  return mw ? std::optional<double>(*mw / 1000.0) : std::nullopt;
}
std::optional<double> Nvml::energy_j(Handle d) const {
  const auto mj = get<unsigned long long>(initialised_, initialised_ ? api_->total_energy : nullptr, d);
  return mj ? std::optional<double>(static_cast<double>(*mj) / 1000.0) : std::nullopt;
}
std::optional<int> Nvml::performance_state(Handle d) const {
  const auto p = get<int>(initialised_, initialised_ ? api_->performance_state : nullptr, d);
  return p && *p >= 0 && *p <= 15 ? p : std::nullopt;  // 32 is NVML_PSTATE_UNKNOWN
}
std::optional<bool> Nvml::persistence_mode(Handle d) const {
  const auto m = get<int>(initialised_, initialised_ ? api_->persistence_mode : nullptr, d);
  return m ? std::optional<bool>(*m != 0) : std::nullopt;
}
std::optional<std::uint64_t> Nvml::clock_event_reasons(Handle d) const {
  const auto r = get<unsigned long long>(initialised_, initialised_ ? api_->clock_event_reasons : nullptr, d);
  return r ? std::optional<std::uint64_t>(*r) : std::nullopt;
}

std::vector<std::pair<std::string, double>> Nvml::state(Handle d) const {
  std::vector<std::pair<std::string, double>> s;
  if (auto v = clock_mhz(d, Clock::sm)) s.emplace_back("sm_clock_mhz", *v);
  if (auto v = clock_mhz(d, Clock::memory)) s.emplace_back("mem_clock_mhz", *v);
  if (auto v = temperature_c(d)) s.emplace_back("temperature_c", *v);
  if (auto v = power_w(d)) s.emplace_back("power_w", *v);
  if (auto v = clock_event_reasons(d)) s.emplace_back("clock_event_reasons", static_cast<double>(*v));
  if (auto v = energy_j(d)) s.emplace_back("energy_j", *v);
  if (auto v = performance_state(d)) s.emplace_back("pstate", *v);
  return s;
}

const Nvml& nvml() {
  static const Nvml instance;
  return instance;
}

}  // namespace attnbench::cuda
