// The tensor-core flash forward kernel (fp16/bf16, fp32 accumulation): one CTA of four warps per query
// tile, each warp 16·M query rows (M = 1: 64-query tiles; M = 2: 128, FlashAttention-2's tile for head
// dims up to 128, every K and V fragment feeding two mma); S = Q·Kᵀ and O += P·V by mma.sync m16n8k16 with the
// probabilities kept in registers between the two products (FlashAttention-2's loop order), an online
// softmax in fp32 (base 2), and masks as dense closed forms, lowered tile lists, or MoBA selections.
// Two variants: pipelined (flash: cp.async double buffering, ldmatrix) and plain (flash_sync).
//
// The warp-level instructions come from whoever includes this header: kernels/cuda/mma_primitives.cuh
// (inline PTX) for the device build, tests/support/warp_emulator.hpp for the CPU emulation that runs
// this same source against the float64 oracle where there is no GPU. T is used as 16-bit storage only.
#pragma once
#include <cstdint>

#include "kernels/cuda/block_lowering.hpp"
#include "kernels/cuda/flash_args.hpp"

namespace attnbench::cuda::flash_mma {

constexpr int kWarps = kFlashWarps;
constexpr int kThreads = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;

// Key tile of the kernel for head dim D, its query tile at M m16 tiles per warp, and its dynamic shared
// memory (the Q tile, kStages K and V tiles, rows padded by 8 elements).
template <int D, int M>
constexpr int block_k() {
  return flash_mma_block_k(D, 16 * M);
}
template <int M>
constexpr int block_q() {
  return kWarps * 16 * M;
}
template <int D, int M, bool kPipelined>
constexpr int smem_bytes(int element_bytes) {
  return (block_q<M>() + 2 * (kPipelined ? 2 : 1) * block_k<D, M>()) * (D + 8) * element_bytes;
}

// rows [row0, row0 + Rows) of a row-major [len][D] matrix into shared memory with row stride LD, zeros
// past `len`; 16-byte loads (D is a multiple of 8 and every row starts 16-byte aligned).
template <class T, int D, int LD, int Rows>
__device__ void load_tile(T* dst, const T* src, long long row0, long long len) {
  constexpr int kChunks = D / 8;
  for (int i = threadIdx.x; i < Rows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    uint4 val = make_uint4(0u, 0u, 0u, 0u);
    if (row0 + r < len) val = *reinterpret_cast<const uint4*>(src + (row0 + r) * D + c);
    *reinterpret_cast<uint4*>(dst + r * LD + c) = val;
  }
}

__device__ inline unsigned smem_pair(const unsigned short* lo, const unsigned short* hi) {
  return static_cast<unsigned>(*lo) | (static_cast<unsigned>(*hi) << 16);
}

// load_tile's asynchronous twin: the copies land when the group they are committed in is waited for.
template <class T, int D, int LD, int Rows>
__device__ void load_tile_async(T* dst, const T* src, long long row0, long long len) {
  constexpr int kChunks = D / 8;
  for (int i = threadIdx.x; i < Rows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = row0 + r < len;
    cp_async16(dst + r * LD + c, src + (valid ? (row0 + r) * D + c : 0), valid);
  }
}

// kPipelined: K and V tiles double-buffered in shared memory and filled by cp.async while the previous
// tile is computed, K and V fragments read by ldmatrix (.trans for V), and where they fit (D·M <= 128)
// the Q fragments kept in registers for the whole key loop. Without it (the method flash_sync, M = 1):
// each tile loaded with plain 16-byte loads between two barriers, fragments read with 32-bit and 16-bit
// shared loads. The masking and the online softmax are the same code for both.
//
// Warp w owns the query rows [w·16·M, (w+1)·16·M) of the tile, as M m16 tiles; its thread (g, t) holds the
// rows g and g + 8 of each, the mma accumulator layout. Query tiles are taken last first: under a
// causal mask the longest ones start first and the short ones fill the tail of the grid.
template <class T, int D, int BK, int M, bool kSparse, bool kPipelined>
__global__ void __launch_bounds__(kThreads) flash_mma_kernel(const FlashArgs a) {
  constexpr int BQ = block_q<M>(), LD = D + 8;
  constexpr int kStages = kPipelined ? 2 : 1;
  constexpr bool kQRegs = kPipelined && D * M <= 128;  // more would spill: 64 registers per 128 dims·rows
  ATTNBENCH_DYNAMIC_SMEM(smem_raw);
  ATTNBENCH_SHARED(std::uint32_t[kMobaMaxBlocks / 32], union_sel);
  ATTNBENCH_SHARED(unsigned long long[BQ], moba_bits);  // MoBA: the visited key tile's selection per row
  T* qs = reinterpret_cast<T*>(smem_raw);
  T* ks0 = qs + BQ * LD;             // kStages K tiles
  T* vs0 = ks0 + kStages * BK * LD;  // kStages V tiles
  const unsigned short* qs16 = reinterpret_cast<const unsigned short*>(qs);

  const int qt = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const long long bh = blockIdx.y;
  const int b = static_cast<int>(bh / a.heads), h = static_cast<int>(bh % a.heads);
  const int kvh = h / (a.heads / a.kv_heads);
  const int q0 = qt * BQ;
  const int Lq = a.q_len, Lk = a.kv_len;
  const int off = Lk - Lq;  // query q sits at key position q + off
  const T* qg = static_cast<const T*>(a.q) + bh * Lq * D;
  const T* kg = static_cast<const T*>(a.k) + (static_cast<long long>(b) * a.kv_heads + kvh) * Lk * D;
  const T* vg = static_cast<const T*>(a.v) + (static_cast<long long>(b) * a.kv_heads + kvh) * Lk * D;
  T* og = static_cast<T*>(a.o) + bh * Lq * D;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  // This thread's rows of the tile: row[m][rr], rr = 0 (g) and 1 (g + 8) of the warp's m16 tile m.
  int row[M][2], qi[M][2];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      row[m][rr] = (warp * M + m) * 16 + g + 8 * rr;
      qi[m][rr] = q0 + row[m][rr];
    }
  // ldmatrix row addresses: lanes 8i..8i+7 address matrix i, row lane & 7.
  const int lm = lane >> 3, lr = lane & 7;

  // Which key tiles to visit: [0, n) in the dense and moba modes (cut at the last position under causal),
  // the listed ones in the tiles mode.
  const int k_tiles = (Lk + BK - 1) / BK;
  int n = k_tiles, list0 = 0;
  const MaskMode mode = kSparse ? a.mode : MaskMode::dense;
  if (mode == MaskMode::tiles) {
    const long long map_row = (a.per_head_maps ? bh : 0) * a.q_tiles + qt;
    list0 = a.row_start[map_row];
    n = a.row_start[map_row + 1] - list0;
  } else if (a.causal) {
    const int last_pos = min(q0 + BQ, Lq) - 1 + off;
    n = last_pos < 0 ? 0 : min(k_tiles, last_pos / BK + 1);
  }
  if (kSparse && mode == MaskMode::moba) {
    for (int w = threadIdx.x; w < a.sel_words; w += kThreads) {
      std::uint32_t u = 0;
      for (int r = 0; r < BQ && q0 + r < Lq; ++r) u |= __ldg(a.sel + (bh * Lq + q0 + r) * a.sel_words + w);
      union_sel[w] = u;
    }
    __syncthreads();
  }
  // The key tile of step `it`, and its bitmask index in the tiles mode (-1: no bitmask).
  auto tile_of = [&](int it, int& bits) {
    bits = -1;
    if (kSparse && mode == MaskMode::tiles) {
      const TileEntry e = a.entries[list0 + it];
      bits = e.bits;
      return static_cast<int>(e.k_tile);
    }
    return it;
  };
  // The first step from `it` on whose tile some query of this tile may see (MoBA skips the tiles that no
  // query selected; the decision is uniform per CTA).
  auto next_visit = [&](int it) {
    if (kSparse && mode == MaskMode::moba)
      for (; it < n; ++it) {
        const int k0 = it * BK;
        const int blk0 = k0 / a.moba_block, blk1 = (min(k0 + BK, Lk) - 1) / a.moba_block;
        bool any = false;
        for (int blk = blk0; blk <= blk1 && !any; ++blk) any = (union_sel[blk >> 5] >> (blk & 31)) & 1u;
        if (any) break;
      }
    return it;
  };

  // MoBA: each query row's selection of key tile kt's keys as one 64-bit word (bit c: key kt·BK + c), into
  // moba_bits for the masking; one row per thread, walking the blocks instead of dividing per key. Called
  // between the barrier after the previous tile's visit and the one before this tile's.
  auto moba_fill = [&](int kt) {
    const int k0 = kt * BK;
    for (int r = threadIdx.x; r < BQ; r += kThreads) {
      unsigned long long w = 0ull;
      if (q0 + r < Lq) {
        const std::uint32_t* sel = a.sel + (bh * Lq + q0 + r) * a.sel_words;
        int blk = k0 / a.moba_block, next = (blk + 1) * a.moba_block;  // next: the first key of block blk + 1
        std::uint32_t word = __ldg(sel + (blk >> 5));
        for (int c = 0; c < BK && k0 + c < Lk; ++c) {
          if (k0 + c == next) {
            ++blk;
            next += a.moba_block;
            if ((blk & 31) == 0) word = __ldg(sel + (blk >> 5));
          }
          w |= static_cast<unsigned long long>((word >> (blk & 31)) & 1u) << c;
        }
      }
      moba_bits[r] = w;
    }
  };

  float o[M][D / 8][4];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[m][j][0] = o[m][j][1] = o[m][j][2] = o[m][j][3] = 0.0f;
  float row_max[M][2], row_sum[M][2];
#pragma unroll
  for (int m = 0; m < M; ++m) row_max[m][0] = row_max[m][1] = -INFINITY, row_sum[m][0] = row_sum[m][1] = 0.0f;
  const float scale_log2 = a.scale * kLog2e;

  // A fragment of the warp's m16 tile m for the 16 dims of slice kk: pipelined, one ldmatrix (matrices
  // rows 0-7 / 8-15 × dims 0-7, then × dims 8-15: a0..a3), else four 32-bit shared loads.
  auto q_fragment = [&](unsigned(&af)[4], int m, int kk) {
    if constexpr (kPipelined) {
      ldmatrix_x4(af, qs + ((warp * M + m) * 16 + (lm & 1) * 8 + lr) * LD + kk * 16 + (lm >> 1) * 8);
      return;
    }
    const int c = kk * 16 + t * 2;
    af[0] = *reinterpret_cast<const unsigned*>(qs16 + row[m][0] * LD + c);
    af[1] = *reinterpret_cast<const unsigned*>(qs16 + row[m][1] * LD + c);
    af[2] = *reinterpret_cast<const unsigned*>(qs16 + row[m][0] * LD + c + 8);
    af[3] = *reinterpret_cast<const unsigned*>(qs16 + row[m][1] * LD + c + 8);
  };
  unsigned qf[kQRegs ? M : 1][kQRegs ? D / 16 : 1][4];

  // One key tile: S = Q·Kᵀ, mask, online softmax, O += P·V.
  auto visit = [&](int kt, int bits, const T* ks, const T* vs) {
    const int k0 = kt * BK;
    const unsigned short* ks16 = reinterpret_cast<const unsigned short*>(ks);
    const unsigned short* vs16 = reinterpret_cast<const unsigned short*>(vs);

    // S = Q·Kᵀ for this warp's 16·M rows and BK keys.
    float s[M][BK / 8][4];
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int j = 0; j < BK / 8; ++j) s[m][j][0] = s[m][j][1] = s[m][j][2] = s[m][j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      unsigned af[M][4];
#pragma unroll
      for (int m = 0; m < M; ++m) {
        if constexpr (kQRegs) {
#pragma unroll
          for (int e = 0; e < 4; ++e) af[m][e] = qf[m][kk][e];
        } else {
          q_fragment(af[m], m, kk);
        }
      }
      if constexpr (kPipelined) {
        // Key groups j and j+1, dims kk·16 + [0, 8) and [8, 16): b0, b1 of group j, then of group j+1.
#pragma unroll
        for (int j = 0; j < BK / 8; j += 2) {
          unsigned kf[4];
          ldmatrix_x4(kf, ks + ((j + (lm >> 1)) * 8 + lr) * LD + kk * 16 + (lm & 1) * 8);
#pragma unroll
          for (int m = 0; m < M; ++m) {
            Mma<T>::run(s[m][j], af[m], kf[0], kf[1]);
            Mma<T>::run(s[m][j + 1], af[m], kf[2], kf[3]);
          }
        }
      } else {
        const int c = kk * 16 + t * 2;
#pragma unroll
        for (int j = 0; j < BK / 8; ++j) {
          const unsigned short* krow = ks16 + (j * 8 + g) * LD + c;
          const unsigned b0 = *reinterpret_cast<const unsigned*>(krow),
                         b1 = *reinterpret_cast<const unsigned*>(krow + 8);
#pragma unroll
          for (int m = 0; m < M; ++m) Mma<T>::run(s[m][j], af[m], b0, b1);
        }
      }
    }

    // P, packed to 16 bits as it is computed: the A fragments of O += P·V, keys kk·16 + [0, 16) in p[m][kk]
    // (the score accumulators of two adjacent 8-key groups), so that the fp32 scores die early.
    unsigned p[M][BK / 16][4];

    // Masking: which elements need a test at all, then the test of the mode.
    bool check = k0 + BK > Lk;  // a ragged last tile: keys past kv_len
    if (mode == MaskMode::dense && a.causal) check |= k0 + BK - 1 > q0 + off;
    if (mode == MaskMode::tiles) check |= bits >= 0;
    if (mode == MaskMode::moba) check = true;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      if (check) {
        unsigned long long words[2] = {~0ull, ~0ull};
        if (kSparse && mode == MaskMode::tiles && bits >= 0) {
          words[0] = a.bits[static_cast<long long>(bits) * BQ + row[m][0]];
          words[1] = a.bits[static_cast<long long>(bits) * BQ + row[m][1]];
        }
        if (kSparse && mode == MaskMode::moba) {
          words[0] = moba_bits[row[m][0]];
          words[1] = moba_bits[row[m][1]];
        }
#pragma unroll
        for (int j = 0; j < BK / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int col = j * 8 + t * 2 + (e & 1), rr = e >> 1, key = k0 + col;
            bool ok = key < Lk && ((words[rr] >> col) & 1ull);
            if ((mode == MaskMode::dense || mode == MaskMode::moba) && a.causal) ok = ok && key <= qi[m][rr] + off;
            if (!ok) s[m][j][e] = -INFINITY;
          }
      }

      // Online softmax on the unscaled scores (the scale is positive, so the maximum is the same), the scale
      // folded into the exponent: exp2(s·scale·log2e − max·scale·log2e), one FFMA per score. The four
      // threads of a quad share each row.
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < BK / 8; ++j) mx = fmaxf(mx, fmaxf(s[m][j][2 * rr], s[m][j][2 * rr + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float new_max = fmaxf(row_max[m][rr], mx);
        // A row with nothing allowed yet keeps base 0 and alpha 1 (its sums are 0). alpha is exactly 1 when
        // the maximum stays: a tile that a row cannot see leaves that row's state as it was.
        const bool none = new_max == -INFINITY;
        const float base = none ? 0.0f : new_max * scale_log2;
        const float alpha = none ? 1.0f : exp2f((row_max[m][rr] - new_max) * scale_log2);
        row_max[m][rr] = new_max;
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < BK / 8; ++j) {
          const float e0 = exp2f(fmaf(s[m][j][2 * rr], scale_log2, -base));
          const float e1 = exp2f(fmaf(s[m][j][2 * rr + 1], scale_log2, -base));
          sum += e0 + e1;
          p[m][j / 2][(j & 1) * 2 + rr] = Mma<T>::pack(e0, e1);
        }
        row_sum[m][rr] = row_sum[m][rr] * alpha + sum;
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          o[m][j][2 * rr] *= alpha;
          o[m][j][2 * rr + 1] *= alpha;
        }
      }
    }

    // O += P·V.
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      if constexpr (kPipelined) {
        // Keys kk·16 + [0, 8) and [8, 16), dim groups j and j+1, transposed: b0, b1 of group j, then of j+1.
#pragma unroll
        for (int j = 0; j < D / 8; j += 2) {
          unsigned vf[4];
          ldmatrix_x4_trans(vf, vs + (kk * 16 + (lm & 1) * 8 + lr) * LD + (j + (lm >> 1)) * 8);
#pragma unroll
          for (int m = 0; m < M; ++m) {
            Mma<T>::run(o[m][j], p[m][kk], vf[0], vf[1]);
            Mma<T>::run(o[m][j + 1], p[m][kk], vf[2], vf[3]);
          }
        }
      } else {
        const unsigned short* v0 = vs16 + (kk * 16 + t * 2) * LD + g;
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          const unsigned short* vc = v0 + j * 8;
          const unsigned b0 = smem_pair(vc, vc + LD), b1 = smem_pair(vc + 8 * LD, vc + 9 * LD);
#pragma unroll
          for (int m = 0; m < M; ++m) Mma<T>::run(o[m][j], p[m][kk], b0, b1);
        }
      }
    }
  };

  if constexpr (kPipelined) {
    // Step `it`'s K and V copies are issued one step ahead, into the stage the step before last used.
    auto issue = [&](int it, int stage) {
      int bits;
      const int k0 = tile_of(it, bits) * BK;
      load_tile_async<T, D, LD, BK>(ks0 + stage * BK * LD, kg, k0, Lk);
      load_tile_async<T, D, LD, BK>(vs0 + stage * BK * LD, vg, k0, Lk);
    };
    int cur = next_visit(0), stage = 0;
    if (cur < n) issue(cur, 0);
    cp_async_commit();
    load_tile<T, D, LD, BQ>(qs, qg, q0, Lq);
    __syncthreads();
    if constexpr (kQRegs) {
#pragma unroll
      for (int m = 0; m < M; ++m)
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) q_fragment(qf[m][kk], m, kk);
    }
    while (cur < n) {
      const int nxt = next_visit(cur + 1);
      if (nxt < n) issue(nxt, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();  // everything but the group just committed: this step's tile has landed
      int bits;
      const int kt = tile_of(cur, bits);
      if (kSparse && mode == MaskMode::moba) moba_fill(kt);
      __syncthreads();
      visit(kt, bits, ks0 + stage * BK * LD, vs0 + stage * BK * LD);
      __syncthreads();  // the stage is read by every warp before the next step refills it
      cur = nxt;
      stage ^= 1;
    }
    cp_async_wait<0>();
  } else {
    load_tile<T, D, LD, BQ>(qs, qg, q0, Lq);
    for (int it = next_visit(0); it < n; it = next_visit(it + 1)) {
      int bits;
      const int kt = tile_of(it, bits);
      __syncthreads();  // the previous tile's K and V are no longer read (and Q has landed)
      load_tile<T, D, LD, BK>(ks0, kg, kt * BK, Lk);
      load_tile<T, D, LD, BK>(vs0, vg, kt * BK, Lk);
      if (kSparse && mode == MaskMode::moba) moba_fill(kt);
      __syncthreads();
      visit(kt, bits, ks0, vs0);
    }
  }

  // Normalise and write; a row that saw no key is written as zeros.
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      float l = row_sum[m][rr];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      if (qi[m][rr] >= Lq) continue;
      T* orow = og + static_cast<long long>(qi[m][rr]) * D + t * 2;
#pragma unroll
      for (int j = 0; j < D / 8; ++j)
        *reinterpret_cast<unsigned*>(orow + j * 8) = Mma<T>::pack(o[m][j][2 * rr] * inv, o[m][j][2 * rr + 1] * inv);
    }
}

}  // namespace attnbench::cuda::flash_mma
