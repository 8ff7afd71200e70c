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

enum class ScoreMaskMode : int { full = 0, causal = 1, bytes = 2 };

// What the softmax kernel needs to decide allowed(row, key). Rows are (b, h, i) flattened, as in S.
struct ScoreMaskView {
  ScoreMaskMode mode = ScoreMaskMode::full;
  std::int64_t offset = 0;              // causal: query i sees keys j <= i + offset (kv_len - q_len)
  const std::uint8_t* bytes = nullptr;  // bytes: [planes][q_len][kv_len], 1 = allowed
  int per_head = 0;                     // bytes: one plane per (b, h) instead of one for all
};

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
    const Mask& m = *p.mask;
    view_ = ScoreMaskView{};
    view_.offset = p.kv_len - p.q_len;
    if (m.is_full()) return;
    if (m.is_causal()) {
      view_.mode = ScoreMaskMode::causal;
      return;
    }
    constexpr std::int64_t kTile = 64;
    const bool per_head = m.varies_with_batch_or_head();
    const std::int64_t planes = per_head ? p.batch * p.heads : 1, Lq = p.q_len, Lk = p.kv_len;
    std::vector<std::uint8_t> host(static_cast<std::size_t>(planes * Lq * Lk));
    for (std::int64_t plane = 0; plane < planes; ++plane) {
      const std::int64_t b = per_head ? plane / p.heads : 0, h = per_head ? plane % p.heads : 0;
      std::uint8_t* base = host.data() + plane * Lq * Lk;
      const BlockMap map = lower_to_block_map(m, b, h, kTile, kTile);
      for (std::int64_t qt = 0; qt < map.q_tiles; ++qt)
        for (std::int64_t kt = 0; kt < map.k_tiles; ++kt) {
          const TileState st = map.at(qt, kt);
          const std::int64_t q0 = qt * kTile, q1 = std::min(q0 + kTile, Lq);
          const std::int64_t k0 = kt * kTile, k1 = std::min(k0 + kTile, Lk);
          for (std::int64_t i = q0; i < q1; ++i)
            for (std::int64_t j = k0; j < k1; ++j)
              base[i * Lk + j] = st == TileState::full    ? 1
                                 : st == TileState::empty ? 0
                                                          : static_cast<std::uint8_t>(m.allowed(b, h, i, j));
        }
    }
    bytes_ = DeviceBuffer(host.size());
    // On the plans' stream and waited for, so the host bytes may go and the first run sees the whole map.
    check(cudaMemcpyAsync(bytes_.data(), host.data(), host.size(), cudaMemcpyHostToDevice, stream()), "mask upload");
    check(cudaStreamSynchronize(stream()), "mask upload");
    view_.mode = ScoreMaskMode::bytes;
    view_.bytes = bytes_.as<std::uint8_t>();
    view_.per_head = per_head ? 1 : 0;
  }
  const ScoreMaskView& view() const { return view_; }

 private:
  ScoreMaskView view_;
  DeviceBuffer bytes_;
};

// ---- masked row softmax ----------------------------------------------------------------------------

constexpr int kSoftmaxThreads = 256;

// Merges two (running max, running sum of e^{x − max}) pairs.
__device__ __forceinline__ void merge_max_sum(float& m, float& l, float m2, float l2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;  // both empty
  l = (m == -INFINITY ? 0.0f : l * expf(m - mx)) + (m2 == -INFINITY ? 0.0f : l2 * expf(m2 - mx));
  m = mx;
}

// One block per row of S [rows][kv_len] (fp32): P = softmax over the allowed keys, 0 elsewhere; a row with
// no allowed key is all zeros. S is read twice (max and sum online, then the probabilities); `p` may
// alias `s` when TP is float (each element is read and then written by the same thread).
template <class TP>
__global__ void __launch_bounds__(kSoftmaxThreads)
    dense_masked_softmax(const float* s, TP* p, std::int64_t q_len, std::int64_t kv_len, ScoreMaskView mask) {
  const std::int64_t row = blockIdx.x, i = row % q_len;
  const float* srow = s + row * kv_len;
  TP* prow = p + row * kv_len;
  const std::uint8_t* mrow =
      mask.mode == ScoreMaskMode::bytes ? mask.bytes + (mask.per_head ? row : i) * kv_len : nullptr;
  auto allowed = [&](std::int64_t j) {
    if (mask.mode == ScoreMaskMode::full) return true;
    if (mask.mode == ScoreMaskMode::causal) return j <= i + mask.offset;
    return mrow[j] != 0;
  };

  float m = -INFINITY, l = 0.0f;
  for (std::int64_t j = threadIdx.x; j < kv_len; j += blockDim.x) {
    if (!allowed(j)) continue;
    const float x = srow[j];
    if (x > m) {
      l = (m == -INFINITY ? 0.0f : l * expf(m - x)) + 1.0f;
      m = x;
    } else {
      l += expf(x - m);
    }
  }
  for (int off = 16; off > 0; off >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, off), l2 = __shfl_xor_sync(0xffffffffu, l, off);
    merge_max_sum(m, l, m2, l2);
  }
  __shared__ float warp_m[kSoftmaxThreads / 32], warp_l[kSoftmaxThreads / 32];
  __shared__ float row_m, row_inv;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    warp_m[warp] = m;
    warp_l[warp] = l;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float bm = warp_m[0], bl = warp_l[0];
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) merge_max_sum(bm, bl, warp_m[w], warp_l[w]);
    row_m = bm;
    row_inv = bm == -INFINITY ? 0.0f : 1.0f / bl;
  }
  __syncthreads();
  const float mx = row_m, inv = row_inv;
  for (std::int64_t j = threadIdx.x; j < kv_len; j += blockDim.x) {
    const float pj = (mx != -INFINITY && allowed(j)) ? expf(srow[j] - mx) * inv : 0.0f;
    prow[j] = from_float<TP>(pj);
  }
}

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
