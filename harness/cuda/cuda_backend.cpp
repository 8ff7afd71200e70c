// The CUDA device backend: device discovery, per-device timing resources, the sampler, device state and
// environment. Registered for Device::Kind::cuda; nothing here runs until a CUDA device is asked for.
#include "harness/cuda/cuda_backend.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "attnbench/device.hpp"
#include "harness/cuda/timing_kernels.hpp"
#include "kernels/cuda/cuda_plan.hpp"

namespace attnbench::cuda {

// What timing on one device needs, made once per device and kept for the life of the process.
struct DeviceResources {
  int index = 0;
  cudaEvent_t start = nullptr, stop = nullptr;
  int* flags_host = nullptr;    // [0]: the host releases the hold; [1]: the hold timed out
  int* flags_device = nullptr;  // the same two ints as the device sees them
  void* flush = nullptr;        // written over before every cold sample
  std::size_t l2_bytes = 0, flush_bytes = 0;
  std::string pci_bus_id;
  std::optional<Nvml::Handle> nvml;
  std::string nvml_note;       // why there is no handle
  unsigned reference_mhz = 0;  // the clock samples are judged against
  std::int64_t hold_timeouts = 0;
};

namespace {

std::string version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

std::string cuda_error_text(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

int attribute(cudaDeviceAttr a, int device) {
  int v = 0;
  return cudaDeviceGetAttribute(&v, a, device) == cudaSuccess ? v : 0;
}

volatile int* flags_of(DeviceResources& r) { return r.flags_host; }

// Lets the held stream go; also on the way out of an exception, so that a throwing run() never leaves the
// device spinning until the timeout.
class Hold {
 public:
  Hold(DeviceResources& r, bool active) : r_(r), active_(active) {
    if (!active_) return;
    flags_of(r_)[0] = 0;
    flags_of(r_)[1] = 0;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    launch_hold(r_.flags_device, kHoldTimeoutS, stream());
  }
  void release() {
    if (!active_) return;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    flags_of(r_)[0] = 1;
    active_ = false;
  }
  ~Hold() { release(); }
  Hold(const Hold&) = delete;
  Hold& operator=(const Hold&) = delete;

 private:
  DeviceResources& r_;
  bool active_;
};

std::unique_ptr<DeviceResources> make_resources(int index) {
  check(cudaSetDevice(index), "cudaSetDevice");
  auto r = std::make_unique<DeviceResources>();
  r->index = index;
  check(cudaEventCreate(&r->start), "cudaEventCreate");
  check(cudaEventCreate(&r->stop), "cudaEventCreate");
  void* flags = nullptr;
  check(cudaHostAlloc(&flags, 2 * sizeof(int), cudaHostAllocMapped | cudaHostAllocPortable), "cudaHostAlloc (flags)");
  r->flags_host = static_cast<int*>(flags);
  void* device_view = nullptr;
  check(cudaHostGetDevicePointer(&device_view, flags, 0), "cudaHostGetDevicePointer");
  r->flags_device = static_cast<int*>(device_view);
  r->l2_bytes = static_cast<std::size_t>(attribute(cudaDevAttrL2CacheSize, index));
  r->flush_bytes = 2 * r->l2_bytes;
  // Not a DeviceBuffer: the flush buffer belongs to the harness, not to any cell's peak.
  if (r->flush_bytes) check(cudaMalloc(&r->flush, r->flush_bytes), "cudaMalloc (L2 flush buffer)");

  char bus[64] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof bus, index) == cudaSuccess) r->pci_bus_id = bus;
  const Nvml& n = nvml();
  if (!n.available())
    r->nvml_note = n.why();
  else if (r->pci_bus_id.empty())
    r->nvml_note = "the CUDA runtime gave no PCI bus id to find the device in NVML";
  else
    r->nvml = n.device_by_pci_bus_id(r->pci_bus_id, &r->nvml_note);
  if (r->nvml)
    r->reference_mhz =
        reference_sm_clock(n.default_applications_clock_mhz(*r->nvml, Clock::sm), n.max_clock_mhz(*r->nvml, Clock::sm));

  // One released hold now, so that the kernel is loaded (CUDA loads modules lazily, and loading while the
  // stream is held could wait on the hold itself).
  {
    Hold hold(*r, true);
    hold.release();
  }
  check(cudaStreamSynchronize(stream()), "first hold");
  return r;
}

}  // namespace

std::int64_t hot_batch_size(double run_s) {
  if (!(run_s > 0)) return kMaxBatch;  // too short for the event clock to see
  const double n = std::ceil(kHotBatchTargetS / run_s);
  return static_cast<std::int64_t>(std::clamp(n, 1.0, static_cast<double>(kMaxBatch)));
}

// --- the sampler -------------------------------------------------------------------------------------

CudaSampler::CudaSampler(DeviceResources& res, std::function<void()> launch, SmClockReader sm_clock,
                         unsigned reference_sm_mhz)
    : res_(res), launch_(std::move(launch)), sm_clock_(std::move(sm_clock)), reference_mhz_(reference_sm_mhz) {}

double CudaSampler::time_unheld(std::int64_t runs) {
  const cudaStream_t s = stream();
  check(cudaEventRecord(res_.start, s), "cudaEventRecord");
  for (std::int64_t i = 0; i < runs; ++i) launch_();
  check(cudaEventRecord(res_.stop, s), "cudaEventRecord");
  check(cudaEventSynchronize(res_.stop), "warm-up run");
  check_launch("warm-up run");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, res_.start, res_.stop), "cudaEventElapsedTime");
  return ms * 1e-3 / static_cast<double>(runs);
}

void CudaSampler::warmup() {
  primed_ = true;
  const double t = time_unheld(1);
  estimate_s_ = estimate_s_ > 0 ? std::min(estimate_s_, t) : t;
}

std::optional<double> CudaSampler::sample(bool cold) {
  const cudaStream_t s = stream();
  // Without a warm-up (policy warmup 0), one untimed run first: it loads the plan's kernels, which must
  // not happen while the stream is held, and estimates the hot batch size.
  if (!primed_) warmup();
  const std::int64_t n = cold ? 1 : (batch_ = hot_batch_size(estimate_s_));
  if (cold && res_.flush_bytes)
    check(cudaMemsetAsync(res_.flush, static_cast<int>(++flush_value_ & 0xFF), res_.flush_bytes, s), "L2 flush");
  check(cudaStreamSynchronize(s), "before a sample");

  // The hold keeps the stream busy while the first runs are queued, so the start event fires only when
  // the work is already waiting on the device: host launch overhead stays outside the events. Only two
  // runs are queued under the hold (as NVBench does): a full launch queue would block the host, and with
  // it the release.
  const bool held = hold_;
  Hold hold(res_, held);
  check(cudaEventRecord(res_.start, s), "cudaEventRecord");
  const std::int64_t under_hold = held ? std::min<std::int64_t>(n, 2) : n;
  for (std::int64_t i = 0; i < under_hold; ++i) launch_();
  if (under_hold == n) check(cudaEventRecord(res_.stop, s), "cudaEventRecord");
  hold.release();
  for (std::int64_t i = under_hold; i < n; ++i) launch_();
  if (under_hold != n) check(cudaEventRecord(res_.stop, s), "cudaEventRecord");
  check(cudaEventSynchronize(res_.stop), "timed run");
  check_launch("timed run");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, res_.start, res_.stop), "cudaEventElapsedTime");

  if (held && flags_of(res_)[1] != 0) {
    // The hold gave up before the host released it: queuing the work blocked (a run() that synchronises),
    // so this sample's start is unknown. The rest of the cell runs without holding the stream.
    ++timeouts_;
    ++res_.hold_timeouts;
    hold_ = false;
    return std::nullopt;
  }
  if (sm_clock_ && reference_mhz_ > 0)
    if (const std::optional<unsigned> mhz = sm_clock_(); mhz && !clock_ok(*mhz, reference_mhz_)) {
      ++throttled_;
      std::this_thread::sleep_for(std::chrono::duration<double>(kThrottleRecoveryS));
      return std::nullopt;
    }
  return ms * 1e-3 / static_cast<double>(n);
}

// --- the backend -------------------------------------------------------------------------------------

CudaBackend::CudaBackend() = default;

// Device resources are left to the driver at exit: the CUDA runtime may already be torn down when static
// objects are destroyed, and freeing into it then is undefined.
CudaBackend::~CudaBackend() {
  for (auto& [index, r] : devices_) (void)r.release();
}

int CudaBackend::device_count(std::string* why) const {
  std::string driver_why;
  if (cuda_device_count(&driver_why) == 0) {  // no driver: ask the runtime nothing
    if (why) *why = driver_why;
    return 0;
  }
  int n = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&n); e != cudaSuccess) {
    std::string text = "the CUDA runtime cannot use the device: " + cuda_error_text(e);
    int driver = 0;
    if (e == cudaErrorInsufficientDriver && cudaDriverGetVersion(&driver) == cudaSuccess)
      text +=
          "; the driver supports CUDA " + version_text(driver) + ", this build needs " + version_text(CUDART_VERSION);
    if (why) *why = text;
    return 0;
  }
  if (n == 0 && why) *why = "the CUDA runtime reports no device";
  return n;
}

DeviceResources& CudaBackend::resources(const Device& d) const {
  auto it = devices_.find(d.index);
  if (it == devices_.end()) it = devices_.emplace(d.index, make_resources(d.index)).first;
  return *it->second;
}

void CudaBackend::select(const Device& d) {
  check(cudaSetDevice(d.index), "cudaSetDevice");
  resources(d);
}

std::size_t CudaBackend::flush_bytes(const Device& d) { return resources(d).flush_bytes; }
std::size_t CudaBackend::l2_bytes(const Device& d) { return resources(d).l2_bytes; }
unsigned CudaBackend::reference_sm_clock_mhz(const Device& d) { return resources(d).reference_mhz; }
std::int64_t CudaBackend::hold_timeouts(const Device& d) { return resources(d).hold_timeouts; }

SmClockReader CudaBackend::sm_clock_reader(const Device& d) {
  const std::optional<Nvml::Handle> h = resources(d).nvml;
  if (!h) return [] { return std::optional<unsigned>(); };
  return [h] { return nvml().clock_mhz(*h, Clock::sm); };
}

Counters CudaBackend::state(const Device& d, std::string* note) const {
  Counters c;
  const DeviceResources& r = resources(d);
  if (r.nvml)
    c = nvml().state(*r.nvml);
  else if (note)
    *note = r.nvml_note;
  c.emplace_back("hold_timeouts", static_cast<double>(r.hold_timeouts));
  return c;
}

void CudaBackend::reset_peak(const Device&) {
  cuda::reset_peak();
  base_bytes_ = live_bytes();
}

std::int64_t CudaBackend::peak_bytes(const Device&) const { return cuda::peak_bytes() - base_bytes_; }

Measurement CudaBackend::measure(Plan& plan, const Inputs& in, Tensor& out, const TimingPolicy& policy,
                                 const Device& d) {
  return ::attnbench::measure(*sampler(plan, in, out, d), policy);
}

std::unique_ptr<Sampler> CudaBackend::sampler(Plan& plan, const Inputs& in, Tensor& out, const Device& d) {
  DeviceResources& r = resources(d);
  return std::make_unique<CudaSampler>(
      r, [&plan, &in, &out] { plan.run(in, out); }, sm_clock_reader(d), r.reference_mhz);
}

void CudaBackend::synchronize(const Device& d) {
  check(cudaSetDevice(d.index), "cudaSetDevice");
  check(cudaDeviceSynchronize(), "synchronize");
  check_launch("synchronize");
}

std::string CudaBackend::environment(const Device& d) const {
  const int i = d.index;
  json e;
  e["backend"] = "cuda";
  e["index"] = i;
  int runtime = 0, driver = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) e["cuda_runtime_version"] = version_text(runtime);
  if (cudaDriverGetVersion(&driver) == cudaSuccess) e["cuda_driver_version"] = version_text(driver);
  e["cuda_build_version"] = version_text(CUDART_VERSION);
  int cublas_major = 0, cublas_minor = 0, cublas_patch = 0;
  if (cublasGetProperty(MAJOR_VERSION, &cublas_major) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(MINOR_VERSION, &cublas_minor) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(PATCH_LEVEL, &cublas_patch) == CUBLAS_STATUS_SUCCESS)
    e["cublas_version"] =
        std::to_string(cublas_major) + "." + std::to_string(cublas_minor) + "." + std::to_string(cublas_patch);

  cudaDeviceProp p{};
  if (const cudaError_t err = cudaGetDeviceProperties(&p, i); err != cudaSuccess) {
    e["error"] = "cudaGetDeviceProperties: " + cuda_error_text(err);
    return e.dump();
  }
  e["name"] = p.name;
  e["compute_capability"] = std::to_string(p.major) + "." + std::to_string(p.minor);
  char uuid[64];
  const auto* u = reinterpret_cast<const unsigned char*>(p.uuid.bytes);
  std::snprintf(uuid, sizeof uuid, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  e["uuid"] = uuid;
  e["sm_count"] = p.multiProcessorCount;
  e["global_memory_bytes"] = static_cast<std::uint64_t>(p.totalGlobalMem);
  e["memory_bus_width_bits"] = p.memoryBusWidth;
  e["l2_cache_bytes"] = p.l2CacheSize;
  e["persisting_l2_max_bytes"] = p.persistingL2CacheMaxSize;
  e["shared_memory_per_sm_bytes"] = static_cast<std::uint64_t>(p.sharedMemPerMultiprocessor);
  e["shared_memory_per_block_optin_bytes"] = static_cast<std::uint64_t>(p.sharedMemPerBlockOptin);
  e["registers_per_sm"] = p.regsPerMultiprocessor;
  e["max_threads_per_sm"] = p.maxThreadsPerMultiProcessor;
  e["sm_clock_max_khz"] = attribute(cudaDevAttrClockRate, i);
  e["memory_clock_max_khz"] = attribute(cudaDevAttrMemoryClockRate, i);
  e["ecc_enabled"] = attribute(cudaDevAttrEccEnabled, i) != 0;

  // Called before the first cell, so the resources may be made here; without them (a CUDA error) the
  // record says why and goes on.
  const DeviceResources* r = nullptr;
  try {
    r = &resources(d);
  } catch (const std::exception& ex) {
    e["resources_error"] = ex.what();
  }
  if (r) {
    e["pci_bus_id"] = r->pci_bus_id;
    e["l2_flush_bytes"] = r->flush_bytes;
  }

  json n;
  const Nvml& lib = nvml();
  n["available"] = lib.available();
  if (!lib.available()) n["note"] = lib.why();
  if (lib.available()) {
    n["driver_version"] = lib.driver_version();
    n["nvml_version"] = lib.nvml_version();
  }
  if (r && r->nvml) {
    const Nvml::Handle h = *r->nvml;
    n["name"] = lib.name(h);
    auto put = [&n](const char* key, const auto& v) {
      if (v) n[key] = *v;
    };
    put("persistence_mode", lib.persistence_mode(h));
    put("enforced_power_limit_w", lib.enforced_power_limit_w(h));
    put("default_applications_sm_clock_mhz", lib.default_applications_clock_mhz(h, Clock::sm));
    put("default_applications_mem_clock_mhz", lib.default_applications_clock_mhz(h, Clock::memory));
    put("applications_sm_clock_mhz", lib.applications_clock_mhz(h, Clock::sm));
    put("applications_mem_clock_mhz", lib.applications_clock_mhz(h, Clock::memory));
    put("max_sm_clock_mhz", lib.max_clock_mhz(h, Clock::sm));
    put("max_mem_clock_mhz", lib.max_clock_mhz(h, Clock::memory));
    n["reference_sm_clock_mhz"] = r->reference_mhz;
  } else if (r && lib.available()) {
    n["note"] = r->nvml_note;
  }
  e["nvml"] = n;

  e["timing"] = {{"clock", "CUDA events on the backend's stream"},
                 {"launch_overhead", "hidden: a kernel holds the stream while each sample's work is queued"},
                 {"hold_timeout_s", kHoldTimeoutS},
                 {"cold", "the L2 is written over (l2_flush_bytes, twice its size) before every sample"},
                 {"hot_batch_target_s", kHotBatchTargetS},
                 {"hot_max_batch", kMaxBatch},
                 {"throttle_threshold", kThrottleThreshold},
                 {"throttle_recovery_s", kThrottleRecoveryS}};
  return e.dump();
}

}  // namespace attnbench::cuda

namespace {
const attnbench::DeviceBackendRegistration<attnbench::cuda::CudaBackend> registration{attnbench::Device::Kind::cuda};
}  // namespace
