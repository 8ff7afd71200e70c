// Device selection: CUDA presence found through the driver API loaded at run time (no link dependency).
#include "attnbench/device.hpp"

#include <dlfcn.h>

#include <map>
#include <stdexcept>

#include "attnbench/backend.hpp"

namespace attnbench {

namespace {
std::map<Device::Kind, std::unique_ptr<DeviceBackend>>& backends() {
  static std::map<Device::Kind, std::unique_ptr<DeviceBackend>> b;
  return b;
}
}  // namespace

void register_device_backend(Device::Kind kind, std::unique_ptr<DeviceBackend> backend) {
  if (backends().count(kind)) throw std::logic_error("device backend registered twice");
  backends()[kind] = std::move(backend);
}
DeviceBackend* device_backend(Device::Kind kind) {
  auto it = backends().find(kind);
  return it == backends().end() ? nullptr : it->second.get();
}

int cuda_device_count(std::string* why) {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    if (why) *why = "no CUDA driver (libcuda.so.1 not found)";
    return 0;
  }
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(lib, "cuDeviceGetCount"));
  int n = 0;
  if (!init || !count) {
    if (why) *why = "CUDA driver lacks cuInit/cuDeviceGetCount";
  } else if (int rc = init(0); rc != 0) {
    if (why) *why = "CUDA driver failed to initialise (CUresult " + std::to_string(rc) + ")";
  } else if (int rc2 = count(&n); rc2 != 0 || n == 0) {
    if (why) *why = "CUDA driver reports no device";
    n = 0;
  }
  dlclose(lib);
  return n;
}

Device resolve_device(const std::string& spec, std::string* note) {
  if (spec == "cpu") return Device{};
  if (spec == "auto") {
    std::string why;
    const int n = cuda_device_count(&why);
    DeviceBackend* b = device_backend(Device::Kind::cuda);
    if (n > 0 && b) {
      std::string why_backend;
      if (b->device_count(&why_backend) > 0) {
        if (note) *note = "auto: " + std::to_string(n) + " CUDA device(s) found; ran on cuda:0";
        return Device{Device::Kind::cuda, 0};
      }
      why = why_backend;
    } else if (n > 0) {
      why = std::to_string(n) + " CUDA device(s) found, but this build has no CUDA backend (configured without nvcc)";
    }
    if (note) *note = "auto: " + why + "; ran on cpu";
    return Device{};
  }
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (spec.size() > 5) {
      try {
        std::size_t used = 0;
        index = std::stoi(spec.substr(5), &used);
        if (used != spec.size() - 5 || index < 0) throw std::invalid_argument("");
      } catch (const std::exception&) {
        throw std::invalid_argument("bad device '" + spec + "' (expected cpu, cuda, cuda:N or auto)");
      }
    }
    std::string why;
    int n = cuda_device_count(&why);
    if (n == 0) throw std::runtime_error("--device " + spec + ": " + why);
    DeviceBackend* b = device_backend(Device::Kind::cuda);
    if (!b) throw std::runtime_error("--device " + spec + ": this build has no CUDA backend (configured without nvcc)");
    n = b->device_count(&why);
    if (n == 0) throw std::runtime_error("--device " + spec + ": " + why);
    if (index >= n) throw std::runtime_error("--device " + spec + ": only " + std::to_string(n) + " CUDA device(s)");
    return Device{Device::Kind::cuda, index};
  }
  throw std::invalid_argument("bad device '" + spec + "' (expected cpu, cuda, cuda:N or auto)");
}

}  // namespace attnbench
