// Method "flash" on CUDA, and the device plan every CUDA flash-based method runs: a mask lowered once
// on the host (closed form for full and causal, tile lists with per-element bitmasks otherwise), the
// tensor-core kernel for fp16/bf16 and the CUDA-core kernel for fp32.
#include <climits>
#include <string>

#include "kernels/cuda/flash.cuh"

namespace attnbench::cuda {

std::string flash_cuda_refusal(const std::string& method, const Problem& p) {
  if (!p.mask) return method + " needs the problem's mask (none was set)";
  if (p.kv_heads < 1 || p.heads % p.kv_heads != 0)
    return "heads (" + std::to_string(p.heads) + ") must be a multiple of kv_heads (" + std::to_string(p.kv_heads) +
           ")";
  const std::string d = std::to_string(p.head_dim), dv = std::to_string(p.value_dim);
  switch (p.dtype) {
    case Dtype::f16:
    case Dtype::bf16:
      if (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256)
        return method + " on CUDA runs fp16/bf16 on tensor cores for head_dim 64, 128 or 256 only, not " + d +
               "; use fp32 (CUDA cores) or pad the head dim";
      if (p.value_dim != p.head_dim)
        return method + " on CUDA's tensor-core kernel needs value_dim equal to head_dim (" + d + "), not " + dv +
               "; use fp32 for differing value dims";
      break;
    case Dtype::f32:
      if (p.head_dim > 256 || p.value_dim > 256)
        return method + " on CUDA computes fp32 on CUDA cores for head_dim and value_dim up to 256, not " + d +
               " and " + dv;
      break;
    default:
      return method + " on CUDA computes from fp16, bf16 or fp32 inputs, not " + std::string(to_string(p.dtype));
  }
  if (!(p.scale > 0))
    return method +
           " on CUDA folds the softmax scale into the exponent after taking the row maximum: the scale must "
           "be positive, not " +
           std::to_string(p.scale);
  if (p.batch * p.heads > 65535)
    return method + " on CUDA launches one grid row per (batch, head): batch·heads must not exceed 65535, not " +
           std::to_string(p.batch * p.heads);
  if (p.q_len > INT_MAX / 2 || p.kv_len > INT_MAX / 2)
    return method + " on CUDA indexes positions with 32-bit integers: q_len and kv_len must stay below 2^30";
  return {};
}

FlashDevicePlan::FlashDevicePlan(const Problem& p, std::shared_ptr<const Mask> mask, const MobaSetup* moba,
                                 FlashKernel kernel)
    : DevicePlan(p, p.dtype), mask_(std::move(mask)) {
  args_ = flash_args_for(p, *mask_, moba, kernel, lowered_);
  if (moba) moba_ = *moba;
}

namespace {
template <class V>
DeviceBuffer upload_vector(const std::vector<V>& v) {
  DeviceBuffer b(v.size() * sizeof(V));
  if (!v.empty()) check(cudaMemcpyAsync(b.data(), v.data(), b.bytes(), cudaMemcpyHostToDevice, stream()), "upload");
  return b;
}
}  // namespace

void FlashDevicePlan::prepare(const Inputs& in) {
  DevicePlan::prepare(in);
  FlashArgs& a = args_;
  if (a.mode == MaskMode::tiles) {
    row_start_ = upload_vector(lowered_.row_start);
    entries_ = upload_vector(lowered_.entries);
    bits_ = upload_vector(lowered_.bits);
    a.row_start = row_start_.as<const std::int32_t>();
    a.entries = entries_.as<const TileEntry>();
    a.bits = bits_.as<const unsigned long long>();
  } else if (a.mode == MaskMode::moba) {
    const std::int64_t blocks = (p_.kv_len + moba_.block - 1) / moba_.block;
    means_ = DeviceBuffer(static_cast<std::size_t>(p_.batch * p_.kv_heads * blocks * p_.head_dim) * sizeof(float));
    sel_ = DeviceBuffer(static_cast<std::size_t>(p_.batch * p_.heads * p_.q_len * a.sel_words) * sizeof(std::uint32_t));
    a.sel = sel_.as<const std::uint32_t>();
  }
  a.q = q_.data();
  a.k = k_.data();
  a.v = v_.data();
  a.o = o_.data();
  check(cudaStreamSynchronize(stream()), "upload");
}

void FlashDevicePlan::run(const Inputs&, Tensor&) {
  if (args_.mode == MaskMode::moba)
    launch_moba_select(args_, p_.dtype, static_cast<int>(moba_.topk), means_.as<float>(), sel_.as<std::uint32_t>(),
                       stream());
  if (p_.dtype == Dtype::f32)
    launch_flash_fp32(args_, stream());
  else
    launch_flash_mma(args_, p_.dtype, stream());
}

Counters FlashDevicePlan::counters() const {
  if (args_.mode != MaskMode::tiles) return {};
  return {{"cuda_tiles_visited", static_cast<double>(lowered_.entries.size())},
          {"cuda_tiles_partial", static_cast<double>(lowered_.partial_tiles())}};
}

namespace {

class FlashCuda final : public DeviceImpl {
 public:
  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (d.is_cpu()) return Support::no("flash's CUDA implementation runs on CUDA devices only");
    if (const std::string why = flash_cuda_refusal("flash", p); !why.empty()) return Support::no(why);
    if (p.dtype != Dtype::f32)
      if (const std::string why = flash_mma_warp_rows_refusal(p.head_dim, true, params.integer("warp_rows"));
          !why.empty())
        return Support::no("flash on CUDA: " + why);
    return Support::yes();
  }
  // block_q and block_k are the CPU kernel's tiles; the CUDA kernels take warp_rows (the query tile is four
  // warps' rows) and fix their key tiles by head dim.
  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<FlashDevicePlan>(p, p.mask, nullptr,
                                             FlashKernel{true, static_cast<int>(params.integer("warp_rows"))});
  }
};

ATTNBENCH_REGISTER_CUDA_IMPL("flash", FlashCuda);

// flash_sync: the same forward pass with the plain tensor-core kernel (each K/V tile loaded between two
// barriers, fragments by 32/16-bit shared loads), kept as flash's peer measured in the same run, so that
// what the pipeline buys is a ratio in every GPU table. GPU only.
class FlashSyncCuda final : public DeviceImpl {
 public:
  Support supports(const Problem& p, const Params&, const Device& d) const override {
    if (d.is_cpu()) return Support::no("flash_sync runs on CUDA devices only");
    if (p.dtype != Dtype::f16 && p.dtype != Dtype::bf16)
      return Support::no("flash_sync is the plain tensor-core kernel: fp16 or bf16 only, not " +
                         std::string(to_string(p.dtype)));
    if (const std::string why = flash_cuda_refusal("flash_sync", p); !why.empty()) return Support::no(why);
    return Support::yes();
  }
  std::unique_ptr<Plan> plan(const Problem& p, const Params&, const Device&) const override {
    return std::make_unique<FlashDevicePlan>(p, p.mask, nullptr, FlashKernel{false, 16});
  }
};

class FlashSync final : public DeviceOnlyMethod {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "flash_sync";
    m.family = Family::exact;
    m.summary =
        "flash's CUDA forward pass without its pipeline: each K/V tile loaded between two barriers, no cp.async, "
        "no ldmatrix (fp16/bf16, GPU only); flash's same-run peer";
    m.reference = "Dao, FlashAttention-2 (2023): the loop order; kernels/cuda/flash_mma.cu";
    m.params = {};
    m.backends = {};  // the CUDA backend comes from the DeviceImpl registered below
    return m;
  }
};

ATTNBENCH_REGISTER_METHOD(FlashSync);
ATTNBENCH_REGISTER_CUDA_IMPL("flash_sync", FlashSyncCuda);

}  // namespace
}  // namespace attnbench::cuda
