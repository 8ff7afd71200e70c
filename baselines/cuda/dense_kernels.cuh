// The kernels of the GPU `dense` and `cublas` baselines: the masked row softmax over a materialised fp32
// score matrix (both), with the mask as closed forms or a byte map built on the host, and dense's tiled
// CUDA-core GEMM. Included by baselines/cuda/dense_scores.cuh (after elements.cuh and shared_memory.cuh)
// and by the CPU warp emulator's test (tests/kernels/cuda_emulated/), which runs them against the
// float64 oracle.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "attnbench/mask.hpp"
#include "attnbench/problem.hpp"

namespace attnbench::cuda::dense_path {

// ---- the mask ----------------------------------------------------------------------------------------

enum class ScoreMaskMode : int { full = 0, causal = 1, bytes = 2 };

// What the softmax kernel needs to decide allowed(row, key). Rows are (b, h, i) flattened, as in S.
struct ScoreMaskView {
  ScoreMaskMode mode = ScoreMaskMode::full;
  std::int64_t offset = 0;              // causal: query i sees keys j <= i + offset (kv_len - q_len)
  const std::uint8_t* bytes = nullptr;  // bytes: [planes][q_len][kv_len], 1 = allowed
  int per_head = 0;                     // bytes: one plane per (b, h) instead of one for all
};

// The mask as the softmax kernel reads it, built on the host: closed forms for full and causal, else a
// byte map [planes][q_len][kv_len] filled tile by tile from the mask's block map (empty and full tiles
// need no predicate calls); view.bytes is left for the caller to point at the map's device copy.
struct HostScoreMask {
  ScoreMaskView view;
  std::vector<std::uint8_t> bytes;
};

inline HostScoreMask host_score_mask(const Problem& p) {
  const Mask& m = *p.mask;
  HostScoreMask r;
  r.view.offset = p.kv_len - p.q_len;
  if (m.is_full()) return r;
  if (m.is_causal()) {
    r.view.mode = ScoreMaskMode::causal;
    return r;
  }
  constexpr std::int64_t kTile = 64;
  const bool per_head = m.varies_with_batch_or_head();
  const std::int64_t planes = per_head ? p.batch * p.heads : 1, Lq = p.q_len, Lk = p.kv_len;
  std::vector<std::uint8_t>& host = r.bytes;
  host.resize(static_cast<std::size_t>(planes * Lq * Lk));
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
  r.view.mode = ScoreMaskMode::bytes;
  r.view.per_head = per_head ? 1 : 0;
  return r;
}

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
  ATTNBENCH_SHARED(float[kSoftmaxThreads / 32], warp_m);
  ATTNBENCH_SHARED(float[kSoftmaxThreads / 32], warp_l);
  ATTNBENCH_SHARED(float, row_m);
  ATTNBENCH_SHARED(float, row_inv);
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

// ---- dense's GEMM -----------------------------------------------------------------------------------

constexpr int kTile = 16;
// C[z] = alpha · A[z] · op(B[kv(z)]), one 16×16 output tile per block, fp32 accumulation.
// A [M][K] and C [M][N] are indexed by z = b·heads + h; B by the kv head of z: b·kv_heads + h / group.
// kBTransposed: B is [N][K] and op(B) = Bᵀ (scores from K); else B is [K][N] (P·V).
template <class TA, class TB, class TC, bool kBTransposed>
__global__ void __launch_bounds__(kTile* kTile)
    dense_gemm(const TA* a, const TB* b, TC* c, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
               std::int64_t heads, std::int64_t group, std::int64_t kv_heads) {
  const std::int64_t z = blockIdx.z, batch = z / heads, h = z % heads;
  const std::int64_t kvz = batch * kv_heads + h / group;
  const TA* az = a + z * M * K;
  const TB* bz = b + kvz * N * K;
  TC* cz = c + z * M * N;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const std::int64_t m0 = static_cast<std::int64_t>(blockIdx.y) * kTile,
                     n0 = static_cast<std::int64_t>(blockIdx.x) * kTile;
  ATTNBENCH_SHARED(float[kTile][kTile + 1], as);
  ATTNBENCH_SHARED(float[kTile][kTile + 1], bs);  // bs[k][n]
  float acc = 0.0f;
  for (std::int64_t k0 = 0; k0 < K; k0 += kTile) {
    {
      const std::int64_t m = m0 + ty, k = k0 + tx;
      as[ty][tx] = (m < M && k < K) ? to_float(az[m * K + k]) : 0.0f;
    }
    if constexpr (kBTransposed) {  // coalesced along k, stored transposed
      const std::int64_t n = n0 + ty, k = k0 + tx;
      bs[tx][ty] = (n < N && k < K) ? to_float(bz[n * K + k]) : 0.0f;
    } else {  // coalesced along n
      const std::int64_t k = k0 + ty, n = n0 + tx;
      bs[ty][tx] = (k < K && n < N) ? to_float(bz[k * N + n]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTile; ++kk) acc += as[ty][kk] * bs[kk][tx];
    __syncthreads();
  }
  const std::int64_t m = m0 + ty, n = n0 + tx;
  if (m < M && n < N) cz[m * N + n] = from_float<TC>(alpha * acc);
}

}  // namespace attnbench::cuda::dense_path
