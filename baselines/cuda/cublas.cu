// Method "cublas": the unfused vendor path on the GPU. S = scale·QKᵀ and O = P·V are cuBLAS strided
// batched GEMMs (fp32 accumulation; fp16/bf16 or fp32 inputs), with a masked softmax kernel between, as
// a framework's non-fused attention runs. GPU only: the CPU method refuses, and its CUDA implementation
// is registered beside it.
#include <cublas_v2.h>

#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "baselines/cuda/cublas_calls.hpp"
#include "baselines/cuda/dense_scores.cuh"

namespace attnbench::cuda::dense_path {
namespace {

// cuBLAS's recommended workspace on Hopper (32 MiB), more than enough before it.
constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;

void check_cublas(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  if (s == CUBLAS_STATUS_ALLOC_FAILED) throw std::bad_alloc();
  throw std::runtime_error(std::string("cuBLAS error in ") + what + ": " + cublasGetStatusName(s) + " (" +
                           cublasGetStatusString(s) + ")");
}

// The probabilities' dtype: what the P·V GEMM reads together with V (cuBLAS takes A and B of one type).
// fp32 problems keep P in the score buffer; fp16/bf16 problems round it once into a buffer of their own.
bool probs_in_place(const Problem& p) { return p.dtype == Dtype::f32; }

double probs_bytes(const Problem& p) {
  return probs_in_place(p) ? 0.0 : score_elements(p) * static_cast<double>(dtype_size(p.dtype));
}

cudaDataType_t cuda_type(Dtype d) {
  switch (d) {
    case Dtype::f32:
      return CUDA_R_32F;
    case Dtype::f16:
      return CUDA_R_16F;
    case Dtype::bf16:
      return CUDA_R_16BF;
    case Dtype::f64:
      break;
  }
  throw std::logic_error("cublas: no GEMM for fp64 inputs");
}

class CublasHandle {
 public:
  CublasHandle() { check_cublas(cublasCreate(&h_), "cublasCreate"); }
  ~CublasHandle() {
    if (h_) cublasDestroy(h_);
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

// The GEMMs' layouts and strides are described in cublas_calls.hpp.
class CublasPlan final : public DevicePlan {
 public:
  explicit CublasPlan(const Problem& p)
      : DevicePlan(p, p.dtype),
        scores_(static_cast<std::size_t>(score_elements(p)) * sizeof(float)),
        probs_(static_cast<std::size_t>(probs_bytes(p))),
        workspace_(kCublasWorkspaceBytes) {
    // cublasSetStream resets the workspace to the library's pool, so the stream goes first.
    check_cublas(cublasSetStream(handle_.get(), stream()), "cublasSetStream");
    check_cublas(cublasSetWorkspace(handle_.get(), workspace_.data(), workspace_.bytes()), "cublasSetWorkspace");
    // The default mode with CUBLAS_COMPUTE_32F never drops to TF32: fp32 inputs get fp32 arithmetic, fp16
    // and bf16 inputs tensor cores with fp32 accumulation.
    check_cublas(cublasSetMathMode(handle_.get(), CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  }

  void prepare(const Inputs& in) override {
    DevicePlan::prepare(in);
    mask_.upload(p_);
  }

  void run(const Inputs&, Tensor&) override {
    const Problem& p = p_;
    const cudaDataType_t in_type = cuda_type(p.dtype);
    const float alpha = static_cast<float>(p.scale), one = 1.0f, zero = 0.0f;
    float* s = scores_.as<float>();
    auto op = [](bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; };

    // 1. Sᵀ = K · Qᵀ (cublas_calls.hpp).
    const StridedGemm g1 = cublas_scores_gemm(p);
    check_cublas(
        cublasGemmStridedBatchedEx(handle_.get(), op(g1.trans_a), op(g1.trans_b), g1.m, g1.n, g1.k, &alpha, k_.data(),
                                   in_type, g1.lda, g1.stride_a, q_.data(), in_type, g1.ldb, g1.stride_b, &zero, s,
                                   CUDA_R_32F, g1.ldc, g1.stride_c, g1.batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx (scores)");

    // 2. P = softmax(S) over the allowed keys, in the dtype the second GEMM reads.
    void* probs = s;
    dispatch_dtype(p.dtype, [&](auto element) {
      using T = decltype(element);
      if constexpr (std::is_same_v<T, float>) {
        launch_masked_softmax<float>(s, s, p, mask_.view());
      } else {
        launch_masked_softmax<T>(s, probs_.as<T>(), p, mask_.view());
        probs = probs_.data();
      }
    });
    const cudaDataType_t probs_type = probs_in_place(p) ? CUDA_R_32F : in_type;

    // 3. Oᵀ = Vᵀ · Pᵀ (cublas_calls.hpp).
    const StridedGemm g3 = cublas_pv_gemm(p);
    check_cublas(cublasGemmStridedBatchedEx(handle_.get(), op(g3.trans_a), op(g3.trans_b), g3.m, g3.n, g3.k, &one,
                                            v_.data(), in_type, g3.lda, g3.stride_a, probs, probs_type, g3.ldb,
                                            g3.stride_b, &zero, o_.data(), in_type, g3.ldc, g3.stride_c, g3.batch,
                                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmStridedBatchedEx (P·V)");
  }

  Counters counters() const override { return {{"workspace_bytes", static_cast<double>(workspace_.bytes())}}; }

 private:
  DeviceBuffer scores_, probs_, workspace_;
  CublasHandle handle_;
  ScoreMask mask_;
};

// Shape limits of cuBLAS's 32-bit dimensions and of the grid; then the memory check.
Support cublas_cuda_supports(const Problem& p) {
  if (Support s = check_shape("cublas", p); !s) return s;
  constexpr std::int64_t kInt = std::numeric_limits<int>::max();
  if (p.group_size() * p.q_len > kInt || p.kv_len > kInt || p.head_dim > kInt || p.value_dim > kInt ||
      p.batch * p.kv_heads > kInt)
    return Support::no(
        "cublas passes GEMM sizes as 32-bit integers: (heads/kv_heads)·q_len, kv_len, head_dim, "
        "value_dim and batch·kv_heads must each be below 2^31");
  return check_fits_on_device("cublas", 4.0 * score_elements(p) + probs_bytes(p),
                              io_bytes(p) + score_mask_bytes(p) + static_cast<double>(kCublasWorkspaceBytes),
                              "the fp32 score matrix and the probabilities (B·H·Lq·Lk·(4 + element size) bytes)");
}

class CublasCuda final : public DeviceImpl {
 public:
  Support supports(const Problem& p, const Params&, const Device&) const override { return cublas_cuda_supports(p); }
  std::unique_ptr<Plan> plan(const Problem& p, const Params&, const Device&) const override {
    return std::make_unique<CublasPlan>(p);
  }
};

class Cublas final : public DeviceOnlyMethod {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "cublas";
    m.family = Family::exact;
    m.summary =
        "the unfused vendor path: S = scale·QKᵀ and O = P·V by cuBLAS strided batched GEMMs (fp32 accumulation), "
        "a masked softmax kernel between (GPU only)";
    m.reference = "NVIDIA cuBLAS, cublasGemmStridedBatchedEx; the math path of PyTorch's scaled_dot_product_attention";
    m.params = {};
    m.backends = {};  // the CUDA backend comes from the DeviceImpl registered below
    return m;
  }

  // Q, K, V, O once; S written by the first GEMM and read twice by the softmax; P written and read once.
  double bytes(const Problem& p, const Params&) const override {
    const double probs_elem = probs_in_place(p) ? 4.0 : static_cast<double>(dtype_size(p.dtype));
    return attention_bytes(p) + score_elements(p) * (3.0 * 4.0 + 2.0 * probs_elem);
  }
};

ATTNBENCH_REGISTER_METHOD(Cublas);
ATTNBENCH_REGISTER_CUDA_IMPL("cublas", CublasCuda);

}  // namespace
}  // namespace attnbench::cuda::dense_path
