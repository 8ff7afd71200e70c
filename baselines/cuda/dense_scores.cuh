// What the GPU `dense` and `cublas` baselines share: element conversions, the problem's mask on the device
// (closed form for full and causal, else a byte map evaluated from Mask::allowed on the host), the masked
// row softmax over a materialised fp32 score matrix, and the refusal when the matrices do not fit.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "attnbench/method.hpp"
#include "kernels/cuda/cuda_plan.hpp"
#include "kernels/cuda/elements.cuh"
#include "kernels/cuda/shared_memory.cuh"
//
#include "baselines/cuda/dense_kernels.cuh"

namespace attnbench::cuda::dense_path {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// ---- element types ---------------------------------------------------------------------------------

using ::attnbench::cuda::from_float;  // kernels/cuda/elements.cuh
using ::attnbench::cuda::to_float;

// Calls f(T{}) with T the device storage type of `dtype` (fp32, fp16 or bf16).
template <class F>
void dispatch_dtype(Dtype dtype, F&& f) {
  switch (dtype) {
    case Dtype::f32:
      f(float{});
      return;
    case Dtype::f16:
      f(__half{});
      return;
    case Dtype::bf16:
      f(__nv_bfloat16{});
      return;
    case Dtype::f64:
      break;
  }
  throw std::logic_error("dense_path: no device kernel for fp64 inputs");
}

// ---- the mask on the device ------------------------------------------------------------------------

// Bytes of the byte map the problem's mask needs on the device (0 for full and causal).
inline double score_mask_bytes(const Problem& p) {
  if (!p.mask || p.mask->is_full() || p.mask->is_causal()) return 0.0;
  const double planes = p.mask->varies_with_batch_or_head() ? static_cast<double>(p.batch * p.heads) : 1.0;
  return planes * static_cast<double>(p.q_len) * static_cast<double>(p.kv_len);
}

// The problem's mask on the device: nothing for full and causal (closed forms in the kernel), else the
// byte map, built tile by tile from the mask's block map (empty and full tiles need no predicate calls).
class ScoreMask {
 public:
  void upload(const Problem& p) {
    HostScoreMask host = host_score_mask(p);
    view_ = host.view;
    if (view_.mode != ScoreMaskMode::bytes) return;
    bytes_ = DeviceBuffer(host.bytes.size());
    // On the plans' stream and waited for, so the host bytes may go and the first run sees the whole map.
    check(cudaMemcpyAsync(bytes_.data(), host.bytes.data(), host.bytes.size(), cudaMemcpyHostToDevice, stream()),
          "mask upload");
    check(cudaStreamSynchronize(stream()), "mask upload");
    view_.bytes = bytes_.as<std::uint8_t>();
  }
  const ScoreMaskView& view() const { return view_; }

 private:
  ScoreMaskView view_;
  DeviceBuffer bytes_;
};

template <class TP>
void launch_masked_softmax(const float* s, TP* p, const Problem& pr, const ScoreMaskView& mask) {
  const std::int64_t rows = pr.batch * pr.heads * pr.q_len;
  dense_masked_softmax<TP>
      <<<static_cast<unsigned>(rows), kSoftmaxThreads, 0, stream()>>>(s, p, pr.q_len, pr.kv_len, mask);
  check_launch("dense_masked_softmax");
}

// ---- refusals ----------------------------------------------------------------------------------------

// The shape and element-type checks both baselines make (B·H·Lq is bounded by one softmax block per row).
inline Support check_shape(const std::string& method, const Problem& p) {
  if (p.dtype != Dtype::f32 && p.dtype != Dtype::bf16 && p.dtype != Dtype::f16)
    return Support::no(method + " on CUDA takes fp32, bf16 or fp16 inputs, not " + std::string(to_string(p.dtype)));
  if (p.kv_heads < 1 || p.heads % p.kv_heads != 0)
    return Support::no("heads (" + std::to_string(p.heads) + ") must be a multiple of kv_heads (" +
                       std::to_string(p.kv_heads) + ")");
  if (!p.mask) return Support::no(method + " needs a problem with a mask");
  if (p.q_len < 1 || p.kv_len < 1 || p.head_dim < 1 || p.value_dim < 1)
    return Support::no(method + " needs q_len, kv_len, head_dim and value_dim of at least 1");
  if (p.batch * p.heads * p.q_len > std::numeric_limits<std::int32_t>::max())
    return Support::no(method + " runs one softmax block per query row: batch·heads·q_len (" +
                       std::to_string(p.batch * p.heads * p.q_len) + ") exceeds 2^31 − 1");
  return Support::yes();
}

// Refuses when `scores` bytes (the materialised matrices) plus `other` bytes (inputs, output, mask,
// workspace) exceed the device's free memory as cudaMemGetInfo reports it now.
inline Support check_fits_on_device(const std::string& method, double scores, double other, const std::string& what) {
  std::size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return Support::no(method + " cannot read the device's free memory (cudaMemGetInfo: " + cudaGetErrorString(e) +
                       ")");
  }
  const double need = scores + other, free_d = static_cast<double>(free_bytes);
  if (need <= free_d) return Support::yes();
  char why[400];
  std::snprintf(why, sizeof why,
                "%s needs %.0f bytes (%.2f GiB) on the device: %s %.0f bytes plus %.0f bytes of inputs, output and "
                "workspace, more than the %.0f bytes (%.2f GiB) free (cudaMemGetInfo); use a smaller shape or an "
                "exact tiled method such as flash",
                method.c_str(), need, need / kGiB, what.c_str(), scores, other, free_d, free_d / kGiB);
  return Support::no(why);
}

// Q, K, V and O in the problem's dtype.
inline double io_bytes(const Problem& p) {
  const double e = static_cast<double>(dtype_size(p.dtype));
  const double q = static_cast<double>(p.batch * p.heads * p.q_len * p.head_dim);
  const double k = static_cast<double>(p.batch * p.kv_heads * p.kv_len * p.head_dim);
  const double v = static_cast<double>(p.batch * p.kv_heads * p.kv_len * p.value_dim);
  const double o = static_cast<double>(p.batch * p.heads * p.q_len * p.value_dim);
  return e * (q + k + v + o);
}

// Elements of the score matrix, B·H·Lq·Lk.
inline double score_elements(const Problem& p) {
  return static_cast<double>(p.batch * p.heads) * static_cast<double>(p.q_len) * static_cast<double>(p.kv_len);
}

}  // namespace attnbench::cuda::dense_path
