// The stream-holding kernel of NVBench-style launch-overhead hiding, and a busy-wait of known duration.
#include <cstdint>

#include "harness/cuda/cuda_backend.hpp"
#include "harness/cuda/timing_kernels.hpp"
#include "kernels/cuda/cuda_plan.hpp"

namespace attnbench::cuda {

namespace {

// Nanoseconds of the device's global timer (a wall clock, unlike clock64, which counts SM cycles and so
// slows down with the clock).
__device__ __forceinline__ std::uint64_t global_ns() {
  std::uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// One thread polls the host's flag over PCIe, sleeping between reads so as not to flood the bus.
__global__ void hold_stream(volatile int* flags, std::uint64_t timeout_ns) {
  const std::uint64_t t0 = global_ns();
  while (flags[0] == 0) {
    if (global_ns() - t0 > timeout_ns) {
      flags[1] = 1;
      __threadfence_system();
      return;
    }
    __nanosleep(1000);
  }
}

__global__ void busy_wait(std::uint64_t ns) {
  const std::uint64_t t0 = global_ns();
  while (global_ns() - t0 < ns) {
  }
}

std::uint64_t to_ns(double seconds) { return seconds > 0 ? static_cast<std::uint64_t>(seconds * 1e9) : 0; }

}  // namespace

void launch_hold(int* flags_device, double timeout_s, cudaStream_t s) {
  hold_stream<<<1, 1, 0, s>>>(flags_device, to_ns(timeout_s));
  check_launch("stream-holding kernel");
}

void launch_busy_wait(double seconds) {
  busy_wait<<<1, 1, 0, stream()>>>(to_ns(seconds));
  check_launch("busy-wait kernel");
}

}  // namespace attnbench::cuda
