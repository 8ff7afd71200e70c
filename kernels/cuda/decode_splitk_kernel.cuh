// The kernels of decode_splitk on CUDA (flash-decoding): a few query tokens against a long KV cache. The
// keys are split into `splits` chunks; one block per (split, row tile, batch·kv head) scores its keys for
// all query rows of the kv head's group at once (so the G query heads share every K/V load), keeps a
// running max and sum, and writes (max, sum, unnormalised output) per row; a second kernel merges the
// splits by the log-sum-exp rule. With one split the first kernel writes the normalised output directly.
//
// Included by kernels/cuda/decode_splitk.cu (after elements.cuh and shared_memory.cuh) and by the CPU
// warp emulator's test (tests/kernels/cuda_emulated/), which runs this source against the float64 oracle.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "attnbench/problem.hpp"

namespace attnbench::cuda::decode {

constexpr int kThreads = 128;  // four warps
constexpr int kWarps = kThreads / 32;
constexpr int kRows = 16;        // query rows (group heads × queries) of one kv head per block
constexpr int kLanesPerKey = 8;  // lanes that share one key's dot products
constexpr int kKeysPerWarp = 32 / kLanesPerKey;
constexpr int kKeysPerStep = kWarps * kKeysPerWarp;
constexpr int kChunk = 64;  // keys per step of the online softmax: two per lane of a warp
constexpr std::int64_t kMaxDim = 256;
constexpr std::int64_t kMinAutoSplitKeys = 256;
constexpr std::int64_t kAutoBlocksPerSm = 4;
constexpr int kMergeThreads = 128;
constexpr int kMergeCols = static_cast<int>(kMaxDim) / kMergeThreads;
constexpr std::int64_t kMaxGridYZ = 65535;
static_assert(kChunk == 64, "the softmax step gives each lane two keys");
static_assert(kChunk % kKeysPerStep == 0 && kChunk % 4 == 0, "chunks hold whole scoring steps and float4s");

using ::attnbench::cuda::from_float;  // kernels/cuda/elements.cuh
using ::attnbench::cuda::to_float;

struct SplitArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* o = nullptr;        // written when direct (one split)
  float* part_o = nullptr;  // [batch·kv_heads][splits][rows][value_dim]
  float* part_m = nullptr;  // [batch·kv_heads][splits][rows]
  float* part_l = nullptr;  // [batch·kv_heads][splits][rows]
  std::int64_t heads = 1, kv_heads = 1, group = 1, q_len = 0, kv_len = 0, head_dim = 0, value_dim = 0;
  std::int64_t rows = 0;  // group·q_len: row r is query r % q_len of head kv_head·group + r / q_len
  std::int64_t splits = 1;
  float scale = 1.0f;
  int causal = 0;
  int direct = 0;
};

// Query rows of one kv head (group heads × queries) are cut into tiles of kRows.
inline std::int64_t row_tiles_of(const Problem& p) { return (p.group_size() * p.q_len + kRows - 1) / kRows; }

// The kernels' arguments for `p` cut into `splits` (resolved) key splits, all but the pointers; the partial
// buffers hold part_slots(p, splits) rows (none with one split, which writes the output directly).
inline SplitArgs split_args_for(const Problem& p, std::int64_t splits) {
  SplitArgs a;
  a.heads = p.heads;
  a.kv_heads = p.kv_heads;
  a.group = p.group_size();
  a.q_len = p.q_len;
  a.kv_len = p.kv_len;
  a.head_dim = p.head_dim;
  a.value_dim = p.value_dim;
  a.rows = p.group_size() * p.q_len;
  a.splits = splits;
  a.scale = static_cast<float>(p.scale);
  a.causal = p.causal() ? 1 : 0;
  a.direct = splits == 1 ? 1 : 0;
  return a;
}
inline std::size_t part_slots(const Problem& p, std::int64_t splits) {
  return splits == 1 ? 0 : static_cast<std::size_t>(p.batch * p.kv_heads * splits * p.group_size() * p.q_len);
}

// Block (split, row tile, b·kv_heads + kv head). kMaxD bounds head_dim (zero-padded in shared memory),
// kCols·kThreads bounds value_dim. Scores: eight lanes per key, each lane owning float4 slices of the
// head dim, so a warp scores four keys at a time for every row. P·V: thread t owns output columns
// t + c·kThreads of every row, in registers.
template <class T, int kMaxD, int kCols>
__global__ void __launch_bounds__(kThreads) decode_split_kernel(SplitArgs a) {
  constexpr int kSlices = kMaxD / (4 * kLanesPerKey);  // float4 slices of the head dim per lane
  ATTNBENCH_SHARED(float[kRows][kMaxD], q_s);          // pre-scaled queries, zero beyond head_dim
  ATTNBENCH_SHARED(float[kRows][kChunk], p_s);         // scores, then probabilities, of one chunk
  ATTNBENCH_SHARED(float[kRows], m_s);
  ATTNBENCH_SHARED(float[kRows], l_s);
  ATTNBENCH_SHARED(float[kRows], alpha_s);
  ATTNBENCH_SHARED(std::int64_t[kRows], visible_s);  // row r sees keys [0, visible_s[r])

  const T* q = static_cast<const T*>(a.q);
  const std::int64_t split = blockIdx.x, bkv = blockIdx.z, b = bkv / a.kv_heads, kvh = bkv % a.kv_heads;
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.y) * kRows;
  const int nrows = static_cast<int>(min(static_cast<std::int64_t>(kRows), a.rows - r0));
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const std::int64_t D = a.head_dim, Dv = a.value_dim, Lq = a.q_len, Lk = a.kv_len;

  for (int idx = tid; idx < nrows * kMaxD; idx += kThreads) {
    const int r = idx / kMaxD, d = idx % kMaxD;
    const std::int64_t row = r0 + r, h = kvh * a.group + row / Lq, qi = row % Lq;
    q_s[r][d] = d < D ? to_float(q[((b * a.heads + h) * Lq + qi) * D + d]) * a.scale : 0.0f;
  }
  if (tid < kRows) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.0f;
    std::int64_t visible = 0;
    if (tid < nrows) {  // bottom-right causal alignment: query qi sits at key position qi + Lk − Lq
      const std::int64_t qi = (r0 + tid) % Lq;
      visible = a.causal ? max(static_cast<std::int64_t>(0), min(qi + Lk - Lq + 1, Lk)) : Lk;
    }
    visible_s[tid] = visible;
  }
  __syncthreads();

  std::int64_t visible_end = 0;  // keys beyond every row's horizon are not read
  for (int r = 0; r < nrows; ++r) visible_end = max(visible_end, visible_s[r]);
  const std::int64_t s0 = split * Lk / a.splits, s1 = (split + 1) * Lk / a.splits;
  const std::int64_t end = min(s1, visible_end);

  const T* kbase = static_cast<const T*>(a.k) + bkv * Lk * D;
  const T* vbase = static_cast<const T*>(a.v) + bkv * Lk * Dv;
  const int sub = lane % kLanesPerKey, key_of_lane = warp * kKeysPerWarp + lane / kLanesPerKey;
  float acc[kRows][kCols];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[r][c] = 0.0f;

  for (std::int64_t j0 = s0; j0 < end; j0 += kChunk) {
    const int nj = static_cast<int>(min(static_cast<std::int64_t>(kChunk), end - j0));

    // 1. Scores of the chunk's keys for every row; keys a row cannot see are −inf.
    for (int step = 0; step < nj; step += kKeysPerStep) {
      const int jj = step + key_of_lane;
      const bool valid = jj < nj;
      float kreg[kSlices][4];
      const T* krow = kbase + (j0 + (valid ? jj : 0)) * D;
#pragma unroll
      for (int i = 0; i < kSlices; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int d = i * 4 * kLanesPerKey + sub * 4 + e;
          kreg[i][e] = (valid && d < D) ? to_float(krow[d]) : 0.0f;
        }
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (r < nrows) {  // uniform over the block: every lane reaches the shuffles
          float part = 0.0f;
#pragma unroll
          for (int i = 0; i < kSlices; ++i) {
            const float4 qv = *reinterpret_cast<const float4*>(&q_s[r][i * 4 * kLanesPerKey + sub * 4]);
            part += kreg[i][0] * qv.x + kreg[i][1] * qv.y + kreg[i][2] * qv.z + kreg[i][3] * qv.w;
          }
#pragma unroll
          for (int off = kLanesPerKey / 2; off > 0; off >>= 1) part += __shfl_xor_sync(0xffffffffu, part, off);
          if (valid && sub == 0) p_s[r][jj] = j0 + jj < visible_s[r] ? part : -INFINITY;
        }
      }
    }
    __syncthreads();

    // 2. Online softmax, one warp per row: new running max, rescale factor, probabilities (0 past nj).
    for (int r = warp; r < nrows; r += kWarps) {
      const float x0 = lane < nj ? p_s[r][lane] : -INFINITY;
      const float x1 = lane + 32 < nj ? p_s[r][lane + 32] : -INFINITY;
      float chunk_max = fmaxf(x0, x1);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) chunk_max = fmaxf(chunk_max, __shfl_xor_sync(0xffffffffu, chunk_max, off));
      const float m_old = m_s[r], m_new = fmaxf(m_old, chunk_max);
      float e0 = 0.0f, e1 = 0.0f, alpha = 1.0f;
      if (m_new != -INFINITY) {  // else nothing seen yet: probabilities 0, nothing to rescale
        e0 = expf(x0 - m_new);   // exp(−inf) = 0 for hidden keys
        e1 = expf(x1 - m_new);
        alpha = expf(m_old - m_new);  // 0 when m_old is −inf: the accumulator is still 0
      }
      p_s[r][lane] = e0;
      p_s[r][lane + 32] = e1;
      float sum = e0 + e1;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      if (lane == 0) {
        l_s[r] = l_s[r] * alpha + sum;
        m_s[r] = m_new;
        alpha_s[r] = alpha;
      }
    }
    __syncthreads();

    // 3. acc = alpha·acc + P·V over the chunk, four keys per step (probabilities past nj are 0). The chunk
    // is summed on its own first, so a 128K-key split adds 2K chunk sums into acc, not 128K products.
    float chunk_acc[kRows][kCols];
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int c = 0; c < kCols; ++c) chunk_acc[r][c] = 0.0f;
    const T* vchunk = vbase + j0 * Dv;
    for (int jj = 0; jj < nj; jj += 4) {
      float vv[4][kCols];
#pragma unroll
      for (int t = 0; t < 4; ++t)
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          const std::int64_t col = tid + c * kThreads;
          vv[t][c] = (jj + t < nj && col < Dv) ? to_float(vchunk[(jj + t) * Dv + col]) : 0.0f;
        }
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        if (r < nrows) {
          const float4 p4 = *reinterpret_cast<const float4*>(&p_s[r][jj]);
#pragma unroll
          for (int c = 0; c < kCols; ++c)
            chunk_acc[r][c] += p4.x * vv[0][c] + p4.y * vv[1][c] + p4.z * vv[2][c] + p4.w * vv[3][c];
        }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      if (r < nrows) {
        const float al = alpha_s[r];
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[r][c] = acc[r][c] * al + chunk_acc[r][c];
      }
    __syncthreads();  // p_s, alpha_s are rewritten by the next chunk
  }

  // 4. The split's result per row: normalised output (one split), else (max, sum, unnormalised output).
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r >= nrows) continue;
    const std::int64_t row = r0 + r;
    if (a.direct) {
      const float inv = l_s[r] > 0.0f ? 1.0f / l_s[r] : 0.0f;  // no visible key: zeros
      const std::int64_t h = kvh * a.group + row / Lq, qi = row % Lq;
      T* orow = static_cast<T*>(a.o) + ((b * a.heads + h) * Lq + qi) * Dv;
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const std::int64_t col = tid + c * kThreads;
        if (col < Dv) orow[col] = from_float<T>(acc[r][c] * inv);
      }
    } else {
      const std::int64_t slot = (bkv * a.splits + split) * a.rows + row;
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const std::int64_t col = tid + c * kThreads;
        if (col < Dv) a.part_o[slot * Dv + col] = acc[r][c];
      }
      if (tid == 0) {
        a.part_m[slot] = m_s[r];
        a.part_l[slot] = l_s[r];
      }
    }
  }
}

// Reduces x over the block with op; every thread gets the result. `scratch` holds kMergeThreads/32 + 1.
template <class Op>
__device__ float block_reduce(float x, Op op, float* scratch) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) x = op(x, __shfl_xor_sync(0xffffffffu, x, off));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  if (threadIdx.x == 0) {
    float y = scratch[0];
    for (int w = 1; w < warps; ++w) y = op(y, scratch[w]);
    scratch[warps] = y;
  }
  __syncthreads();
  const float result = scratch[warps];
  __syncthreads();  // scratch may be reused at once
  return result;
}

struct MaxOp {
  __device__ float operator()(float x, float y) const { return fmaxf(x, y); }
};
struct SumOp {
  __device__ float operator()(float x, float y) const { return x + y; }
};

// One block per output row (b, h, query): o = Σ_s e^{m_s − M}·o_s / Σ_s e^{m_s − M}·l_s, M = max_s m_s;
// a split the mask emptied (m_s = −inf) weighs 0, a row with no visible key at all is zeros.
template <class T>
__global__ void __launch_bounds__(kMergeThreads) decode_merge_kernel(SplitArgs a) {
  ATTNBENCH_SHARED(float[kMergeThreads / 32 + 1], scratch);
  ATTNBENCH_SHARED(float[kMergeThreads], weight_s);
  const std::int64_t out_row = blockIdx.x, bh = out_row / a.q_len, qi = out_row % a.q_len;
  const std::int64_t b = bh / a.heads, h = bh % a.heads, kvh = h / a.group;
  const std::int64_t r = (h % a.group) * a.q_len + qi, S = a.splits, Dv = a.value_dim;
  const std::int64_t base = (b * a.kv_heads + kvh) * S * a.rows + r;  // slot of split s: base + s·rows
  const int tid = threadIdx.x;
  T* orow = static_cast<T*>(a.o) + out_row * Dv;

  float mx = -INFINITY;
  for (std::int64_t s = tid; s < S; s += kMergeThreads) mx = fmaxf(mx, a.part_m[base + s * a.rows]);
  mx = block_reduce(mx, MaxOp{}, scratch);
  if (mx == -INFINITY) {
    for (std::int64_t col = tid; col < Dv; col += kMergeThreads) orow[col] = from_float<T>(0.0f);
    return;
  }
  float total = 0.0f;
  for (std::int64_t s = tid; s < S; s += kMergeThreads) {
    const float m = a.part_m[base + s * a.rows];
    if (m != -INFINITY) total += expf(m - mx) * a.part_l[base + s * a.rows];
  }
  total = block_reduce(total, SumOp{}, scratch);  // >= 1: the split holding the max contributes e^0·l >= 1

  float acc[kMergeCols];
#pragma unroll
  for (int c = 0; c < kMergeCols; ++c) acc[c] = 0.0f;
  for (std::int64_t s0 = 0; s0 < S; s0 += kMergeThreads) {
    const std::int64_t s = s0 + tid;
    const float m = s < S ? a.part_m[base + s * a.rows] : -INFINITY;
    weight_s[tid] = m == -INFINITY ? 0.0f : expf(m - mx);
    __syncthreads();
    const int n = static_cast<int>(min(static_cast<std::int64_t>(kMergeThreads), S - s0));
    for (int t = 0; t < n; ++t) {
      const float w = weight_s[t];
      if (w == 0.0f) continue;
      const float* part = a.part_o + (base + (s0 + t) * a.rows) * Dv;
#pragma unroll
      for (int c = 0; c < kMergeCols; ++c) {
        const std::int64_t col = tid + c * kMergeThreads;
        if (col < Dv) acc[c] += w * part[col];
      }
    }
    __syncthreads();
  }
  const float inv = 1.0f / total;
#pragma unroll
  for (int c = 0; c < kMergeCols; ++c) {
    const std::int64_t col = tid + c * kMergeThreads;
    if (col < Dv) orow[col] = from_float<T>(acc[c] * inv);
  }
}

}  // namespace attnbench::cuda::decode
