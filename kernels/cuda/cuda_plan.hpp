// What every CUDA method shares: error checks, device buffers the backend counts, the stream the backend
// times, and a Plan base whose inputs live on the device. Included by .cu files only.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "attnbench/method.hpp"

namespace attnbench::cuda {

// Throws std::bad_alloc for cudaErrorMemoryAllocation, std::runtime_error("CUDA error in WHAT: ...")
// for any other error; nothing for cudaSuccess.
void check(cudaError_t e, const char* what);
// Checks the last launch (cudaGetLastError) in the same way.
void check_launch(const char* what);

// The stream every plan launches on and the backend's events bracket.
cudaStream_t stream();

// Device memory counted in the cell's peak (allocator high-water mark plus workspace).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* data() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// The counters behind DeviceBuffer: bytes live now and the high-water mark since reset_peak().
std::int64_t live_bytes();
std::int64_t peak_bytes();
void reset_peak();

// A plan whose Q, K, V are uploaded once in prepare() (in the input dtype, same layout as the host
// tensors) and whose output lives in o_ (the output dtype); poison() fills o_ with NaN bytes (0xFF) on
// the stream, collect() downloads it into the host output. run() launches on stream() and returns
// without synchronising; the host tensors it is given are ignored.
class DevicePlan : public Plan {
 public:
  DevicePlan(const Problem& p, Dtype out_dtype) : p_(p), out_dtype_(out_dtype) {}
  void prepare(const Inputs& in) override;
  void poison() override;
  void collect(Tensor& out) override;

 protected:
  Problem p_;
  Dtype out_dtype_;
  DeviceBuffer q_, k_, v_, o_;
};

}  // namespace attnbench::cuda
