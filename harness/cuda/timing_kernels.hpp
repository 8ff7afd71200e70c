// The two kernels of GPU timing, launched from host code: one that holds a stream until the host releases
// it (or a timeout passes), and one that keeps the device busy for a known time.
#pragma once
#include <cuda_runtime.h>

namespace attnbench::cuda {

// Holds `s` until the host sets flags[0] to non-zero, or until `timeout_s` of the device's global timer
// have passed; it then sets flags[1] to 1 so that the host can tell the two apart. `flags_device` is the
// device's view of two ints of mapped, pinned host memory.
void launch_hold(int* flags_device, double timeout_s, cudaStream_t s);

}  // namespace attnbench::cuda
