// Device buffers with a high-water mark, error checks, and the upload/poison/download of DevicePlan.
#include <atomic>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_plan.hpp"

namespace attnbench::cuda {

namespace {
std::atomic<std::int64_t> g_live{0}, g_peak{0};
}

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // not sticky: clear it so the next cell starts clean
    throw std::bad_alloc();
  }
  throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(e) + " (" +
                           cudaGetErrorString(e) + ")");
}

void check_launch(const char* what) { check(cudaGetLastError(), what); }

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t st = nullptr;
    check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate");
    return st;
  }();
  return s;
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  check(cudaMalloc(&ptr_, bytes), "cudaMalloc");
  const std::int64_t now = g_live += static_cast<std::int64_t>(bytes);
  std::int64_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) {
    cudaFree(ptr_);
    g_live -= static_cast<std::int64_t>(bytes_);
  }
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) {
      cudaFree(ptr_);
      g_live -= static_cast<std::int64_t>(bytes_);
    }
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

std::int64_t live_bytes() { return g_live.load(); }
std::int64_t peak_bytes() { return g_peak.load(); }
void reset_peak() { g_peak.store(g_live.load()); }

namespace {
DeviceBuffer upload(const Tensor& t) {
  DeviceBuffer b(t.nbytes());
  if (t.nbytes()) check(cudaMemcpyAsync(b.data(), t.data(), t.nbytes(), cudaMemcpyHostToDevice, stream()), "upload");
  return b;
}
}  // namespace

void DevicePlan::prepare(const Inputs& in) {
  q_ = upload(in.q);
  k_ = upload(in.k);
  v_ = upload(in.v);
  o_ = DeviceBuffer(static_cast<std::size_t>(p_.batch * p_.heads * p_.q_len * p_.value_dim) * dtype_size(out_dtype_));
  check(cudaStreamSynchronize(stream()), "upload");
}

void DevicePlan::poison() { check(cudaMemsetAsync(o_.data(), 0xFF, o_.bytes(), stream()), "poison"); }

void DevicePlan::collect(Tensor& out) {
  if (out.nbytes() != o_.bytes()) throw std::logic_error("DevicePlan::collect: output size differs from the device's");
  check(cudaMemcpyAsync(out.data(), o_.data(), o_.bytes(), cudaMemcpyDeviceToHost, stream()), "download");
  check(cudaStreamSynchronize(stream()), "download");
}

}  // namespace attnbench::cuda
