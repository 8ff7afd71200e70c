// Method "dense" on CUDA: the naive reference point of the GPU. It materialises S = scale·QKᵀ in fp32 in
// device memory with a plain shared-memory tiled kernel on CUDA cores, applies the mask and the softmax
// row by row in place, then computes P·V the same way; fp32, bf16 or fp16 inputs, output in the input's
// dtype. No tensor cores and no fusion, on purpose: the fused and vendor paths are measured against it.
#include <cstdio>
#include <memory>
#include <string>

#include "baselines/cuda/dense_scores.cuh"

namespace attnbench::cuda::dense_path {
namespace {

constexpr std::int64_t kMaxGridYZ = 65535;

unsigned tiles(std::int64_t n) { return static_cast<unsigned>((n + kTile - 1) / kTile); }

class DenseCudaPlan final : public DevicePlan {
 public:
  explicit DenseCudaPlan(const Problem& p)
      : DevicePlan(p, p.dtype), scores_(static_cast<std::size_t>(score_elements(p)) * sizeof(float)) {}

  void prepare(const Inputs& in) override {
    DevicePlan::prepare(in);
    mask_.upload(p_);
  }

  void run(const Inputs&, Tensor&) override {
    dispatch_dtype(p_.dtype, [&](auto element) { forward<decltype(element)>(); });
  }

 private:
  template <class T>
  void forward() {
    const Problem& p = p_;
    const dim3 block(kTile, kTile);
    const unsigned bh = static_cast<unsigned>(p.batch * p.heads);
    float* s = scores_.as<float>();
    // 1. S = scale·Q·Kᵀ over every (query, key) pair.
    dense_gemm<T, T, float, true><<<dim3(tiles(p.kv_len), tiles(p.q_len), bh), block, 0, stream()>>>(
        q_.as<T>(), k_.as<T>(), s, p.q_len, p.kv_len, p.head_dim, static_cast<float>(p.scale), p.heads, p.group_size(),
        p.kv_heads);
    check_launch("dense scores");
    // 2. P = softmax(S) over the allowed keys, in place.
    launch_masked_softmax<float>(s, s, p, mask_.view());
    // 3. O = P·V, rounded to the output dtype once.
    dense_gemm<float, T, T, false><<<dim3(tiles(p.value_dim), tiles(p.q_len), bh), block, 0, stream()>>>(
        s, v_.as<T>(), o_.as<T>(), p.q_len, p.value_dim, p.kv_len, 1.0f, p.heads, p.group_size(), p.kv_heads);
    check_launch("dense P·V");
  }

  DeviceBuffer scores_;
  ScoreMask mask_;
};

class DenseCuda final : public DeviceImpl {
 public:
  Support supports(const Problem& p, const Params& params, const Device&) const override {
    if (Support s = check_shape("dense", p); !s) return s;
    if (p.batch * p.heads > kMaxGridYZ)
      return Support::no("dense on CUDA runs one grid slice per (batch, head): batch·heads (" +
                         std::to_string(p.batch * p.heads) + ") exceeds 65535");
    if ((p.q_len + kTile - 1) / kTile > kMaxGridYZ)
      return Support::no("dense on CUDA supports q_len up to " + std::to_string(kMaxGridYZ * kTile) + ", not " +
                         std::to_string(p.q_len));
    const double scores = 4.0 * score_elements(p);
    const double by_param = (params.has("max_score_gib") ? params.number("max_score_gib") : 8.0) * kGiB;
    if (scores > by_param) {
      char why[256];
      std::snprintf(why, sizeof why,
                    "score matrix needs %.1f GiB (B·H·Lq·Lk·4 bytes = %.0f bytes), more than the %.1f GiB limit "
                    "(parameter max_score_gib)",
                    scores / kGiB, scores, by_param / kGiB);
      return Support::no(why);
    }
    return check_fits_on_device("dense", scores, io_bytes(p) + score_mask_bytes(p),
                                "the fp32 score matrix (B·H·Lq·Lk·4 bytes)");
  }

  std::unique_ptr<Plan> plan(const Problem& p, const Params&, const Device&) const override {
    return std::make_unique<DenseCudaPlan>(p);
  }
};

ATTNBENCH_REGISTER_CUDA_IMPL("dense", DenseCuda);

}  // namespace
}  // namespace attnbench::cuda::dense_path
