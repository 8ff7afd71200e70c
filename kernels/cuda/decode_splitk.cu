// Method "decode_splitk" on CUDA (flash-decoding): the plan that resolves the number of key splits, launches
// the split and merge kernels of decode_splitk_kernel.cuh, and the refusals of what they do not handle.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "attnbench/method.hpp"
#include "kernels/cpu/decode_splitk_params.hpp"
#include "kernels/cuda/cuda_plan.hpp"
#include "kernels/cuda/elements.cuh"
#include "kernels/cuda/shared_memory.cuh"
//
#include "kernels/cuda/decode_splitk_kernel.cuh"

namespace attnbench::cuda::decode {
namespace {

template <class T, int kMaxD, int kCols>
void launch_split(const SplitArgs& a, std::int64_t row_tiles, std::int64_t batch) {
  const dim3 grid(static_cast<unsigned>(a.splits), static_cast<unsigned>(row_tiles),
                  static_cast<unsigned>(batch * a.kv_heads));
  decode_split_kernel<T, kMaxD, kCols><<<grid, kThreads, 0, stream()>>>(a);
}

template <class T>
void launch(const SplitArgs& a, std::int64_t row_tiles, std::int64_t batch) {
  const bool narrow_d = a.head_dim <= 128, narrow_dv = a.value_dim <= kThreads;
  if (narrow_d && narrow_dv)
    launch_split<T, 128, 1>(a, row_tiles, batch);
  else if (narrow_d)
    launch_split<T, 128, 2>(a, row_tiles, batch);
  else if (narrow_dv)
    launch_split<T, 256, 1>(a, row_tiles, batch);
  else
    launch_split<T, 256, 2>(a, row_tiles, batch);
  check_launch("decode_split_kernel");
  if (!a.direct) {
    decode_merge_kernel<T><<<static_cast<unsigned>(batch * a.heads * a.q_len), kMergeThreads, 0, stream()>>>(a);
    check_launch("decode_merge_kernel");
  }
}

int sm_count() {
  int device = 0, sms = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  return std::max(sms, 1);
}

// splits = 0: about kAutoBlocksPerSm blocks per multiprocessor over all (batch, kv head, row tile) units,
// without making a split shorter than kMinAutoSplitKeys keys.
std::int64_t resolve_splits(const Problem& p, std::int64_t splits, int sms) {
  if (splits > 0) return splits;
  const std::int64_t units = std::max<std::int64_t>(1, p.batch * p.kv_heads * row_tiles_of(p));
  const std::int64_t wanted = (kAutoBlocksPerSm * sms + units - 1) / units;
  const std::int64_t most = std::max<std::int64_t>(1, p.kv_len / kMinAutoSplitKeys);
  return std::clamp<std::int64_t>(wanted, 1, most);
}

class DecodeSplitkCudaPlan final : public DevicePlan {
 public:
  DecodeSplitkCudaPlan(const Problem& p, std::int64_t splits)
      : DevicePlan(p, p.dtype), row_tiles_(row_tiles_of(p)), splits_(resolve_splits(p, splits, sm_count())) {
    a_ = split_args_for(p, splits_);
    if (!a_.direct) {
      const std::size_t slots = part_slots(p, splits_);
      part_o_ = DeviceBuffer(slots * static_cast<std::size_t>(p.value_dim) * sizeof(float));
      part_m_ = DeviceBuffer(slots * sizeof(float));
      part_l_ = DeviceBuffer(slots * sizeof(float));
      a_.part_o = part_o_.as<float>();
      a_.part_m = part_m_.as<float>();
      a_.part_l = part_l_.as<float>();
    }
  }

  void run(const Inputs&, Tensor&) override {
    a_.q = q_.data();
    a_.k = k_.data();
    a_.v = v_.data();
    a_.o = o_.data();
    switch (p_.dtype) {
      case Dtype::f32:
        launch<float>(a_, row_tiles_, p_.batch);
        return;
      case Dtype::f16:
        launch<__half>(a_, row_tiles_, p_.batch);
        return;
      case Dtype::bf16:
        launch<__nv_bfloat16>(a_, row_tiles_, p_.batch);
        return;
      case Dtype::f64:
        break;
    }
    throw std::logic_error("decode_splitk on CUDA: no kernel for fp64");
  }

  // The number of splits the plan used (auto resolves against the device's multiprocessors).
  Counters counters() const override { return {{"splits", static_cast<double>(splits_)}}; }

 private:
  std::int64_t row_tiles_, splits_;
  SplitArgs a_;
  DeviceBuffer part_o_, part_m_, part_l_;
};

class DecodeSplitkCuda final : public DeviceImpl {
 public:
  Support supports(const Problem& p, const Params& params, const Device&) const override {
    if (p.dtype != Dtype::f32 && p.dtype != Dtype::bf16 && p.dtype != Dtype::f16)
      return Support::no("decode_splitk on CUDA takes fp32, bf16 or fp16 inputs, not " +
                         std::string(to_string(p.dtype)));
    if (p.kv_heads < 1 || p.heads % p.kv_heads != 0)
      return Support::no("heads (" + std::to_string(p.heads) + ") must be a multiple of kv_heads (" +
                         std::to_string(p.kv_heads) + ")");
    if (!p.mask) return Support::no("decode_splitk needs a problem with a mask");
    if (!p.mask->is_full() && !p.mask->is_causal())
      return Support::no("decode_splitk supports the full and causal masks only, not '" + p.mask->name() +
                         "'; run it on a full or causal problem");
    if (p.q_len < 1 || p.kv_len < 1) return Support::no("decode_splitk needs q_len and kv_len of at least 1");
    if (Support s = kernels::decode_splitk_params_support(p, params); !s) return s;
    if (p.head_dim > kMaxDim || p.value_dim > kMaxDim)
      return Support::no("decode_splitk on CUDA supports head_dim and value_dim up to " + std::to_string(kMaxDim) +
                         ", not " + std::to_string(p.head_dim) + " and " + std::to_string(p.value_dim));
    if (p.batch * p.kv_heads > kMaxGridYZ || row_tiles_of(p) > kMaxGridYZ)
      return Support::no("decode_splitk on CUDA needs batch·kv_heads and (heads/kv_heads)·q_len/16 of at most 65535");
    if (p.batch * p.heads * p.q_len > std::numeric_limits<std::int32_t>::max())
      return Support::no("decode_splitk on CUDA merges one output row per block: batch·heads·q_len must be below 2^31");
    return Support::yes();
  }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<DecodeSplitkCudaPlan>(p, params.integer("splits"));
  }
};

ATTNBENCH_REGISTER_CUDA_IMPL("decode_splitk", DecodeSplitkCuda);

}  // namespace
}  // namespace attnbench::cuda::decode
