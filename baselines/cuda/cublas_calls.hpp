// The two strided batched GEMMs of the cublas baseline, as cuBLAS sees them: row-major matrices are their
// column-major transposes, and the G = heads/kv_heads query heads of one kv head are adjacent in Q, S, P
// and O, so each kv head's group is one [G·Lq] × ... matrix and one batched GEMM of batch·kv_heads entries
// covers GQA and MQA. CUDA-free: baselines/cuda/cublas.cu passes these numbers to
// cublasGemmStridedBatchedEx, and the CPU test of the baseline (tests/kernels/cuda_emulated/) applies
// cuBLAS's documented semantics to the same numbers.
#pragma once
#include <cstdint>

#include "attnbench/problem.hpp"

namespace attnbench::cuda::dense_path {

// C_i = alpha·op(A_i)·op(B_i) + beta·C_i, column-major, i < batch; op(X) = Xᵀ when trans_X; A_i starts at
// A + i·stride_a (elements), and likewise B_i and C_i. op(A) is m × k, op(B) k × n, C m × n.
struct StridedGemm {
  bool trans_a = false, trans_b = false;
  int m = 0, n = 0, k = 0;
  int lda = 0, ldb = 0, ldc = 0;
  long long stride_a = 0, stride_b = 0, stride_c = 0;
  int batch = 0;
};

// 1. Sᵀ (col-major Lk × M) = K · Qᵀ: A = K, col-major [D × Lk] taken transposed; B = Q, col-major [D × M];
// M = G·Lq rows of the kv head's group.
inline StridedGemm cublas_scores_gemm(const Problem& p) {
  const long long group_rows = p.group_size() * p.q_len;
  StridedGemm g;
  g.trans_a = true;
  g.m = static_cast<int>(p.kv_len);
  g.n = static_cast<int>(group_rows);
  g.k = static_cast<int>(p.head_dim);
  g.lda = static_cast<int>(p.head_dim);
  g.stride_a = p.kv_len * p.head_dim;
  g.ldb = static_cast<int>(p.head_dim);
  g.stride_b = group_rows * p.head_dim;
  g.ldc = static_cast<int>(p.kv_len);
  g.stride_c = group_rows * p.kv_len;
  g.batch = static_cast<int>(p.batch * p.kv_heads);
  return g;
}

// 3. Oᵀ (col-major Dv × M) = Vᵀ · Pᵀ: A = V, col-major [Dv × Lk]; B = P, col-major [Lk × M].
inline StridedGemm cublas_pv_gemm(const Problem& p) {
  const long long group_rows = p.group_size() * p.q_len;
  StridedGemm g;
  g.m = static_cast<int>(p.value_dim);
  g.n = static_cast<int>(group_rows);
  g.k = static_cast<int>(p.kv_len);
  g.lda = static_cast<int>(p.value_dim);
  g.stride_a = p.kv_len * p.value_dim;
  g.ldb = static_cast<int>(p.kv_len);
  g.stride_b = group_rows * p.kv_len;
  g.ldc = static_cast<int>(p.value_dim);
  g.stride_c = group_rows * p.value_dim;
  g.batch = static_cast<int>(p.batch * p.kv_heads);
  return g;
}

}  // namespace attnbench::cuda::dense_path
