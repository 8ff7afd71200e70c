// The tensor-core flash forward kernel (fp16/bf16, fp32 accumulation): one CTA of four warps per
// 64-query tile, each warp 16 query rows; S = Q·Kᵀ and O += P·V by mma.sync m16n8k16 with the
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

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;

// Key tile of the kernel for head dim D, and its dynamic shared memory (the Q tile, kStages K and V tiles,
// rows padded by 8 elements).
template <int D>
constexpr int block_k() {
  return flash_mma_block_k(D);
}
template <int D, bool kPipelined>
constexpr int smem_bytes(int element_bytes) {
  return (kFlashBlockQ + 2 * (kPipelined ? 2 : 1) * block_k<D>()) * (D + 8) * element_bytes;
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

__device__ inline bool moba_selected(const FlashArgs& a, long long bh, int q, int key) {
  const int blk = key / a.moba_block;
  const std::uint32_t w = __ldg(a.sel + (bh * a.q_len + q) * a.sel_words + (blk >> 5));
  return (w >> (blk & 31)) & 1u;
}

// kPipelined: K and V tiles double-buffered in shared memory and filled by cp.async while the previous
// tile is computed, K and V fragments read by ldmatrix (.trans for V), and for D <= 128 the Q fragments
// kept in registers for the whole key loop. Without it (the method flash_sync): each tile loaded with
// plain 16-byte loads between two barriers, fragments read with 32-bit and 16-bit shared loads. The
// masking and the online softmax are the same code for both.
template <class T, int D, int BK, bool kSparse, bool kPipelined>
__global__ void __launch_bounds__(kThreads) flash_mma_kernel(const FlashArgs a) {
  constexpr int BQ = kFlashBlockQ, LD = D + 8;
  constexpr int kStages = kPipelined ? 2 : 1;
  constexpr bool kQRegs = kPipelined && D <= 128;  // D = 256 would spill its 64 more registers
  ATTNBENCH_DYNAMIC_SMEM(smem_raw);
  ATTNBENCH_SHARED(std::uint32_t[kMobaMaxBlocks / 32], union_sel);
  T* qs = reinterpret_cast<T*>(smem_raw);
  T* ks0 = qs + BQ * LD;             // kStages K tiles
  T* vs0 = ks0 + kStages * BK * LD;  // kStages V tiles
  const unsigned short* qs16 = reinterpret_cast<const unsigned short*>(qs);

  const int qt = blockIdx.x;
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
  const int r0 = warp * 16 + g, r1 = r0 + 8;  // this thread's two rows of the tile
  const int qi[2] = {q0 + r0, q0 + r1};
  // ldmatrix row addresses: lanes 8m..8m+7 address matrix m, row lane & 7.
  const int lm = lane >> 3, lr = lane & 7;

  // Which key tiles to visit: [0, n) in the dense and moba modes (cut at the last position under causal),
  // the listed ones in the tiles mode.
  const int k_tiles = (Lk + BK - 1) / BK;
  int n = k_tiles, list0 = 0;
  const MaskMode mode = kSparse ? a.mode : MaskMode::dense;
  if (mode == MaskMode::tiles) {
    const long long row = (a.per_head_maps ? bh : 0) * a.q_tiles + qt;
    list0 = a.row_start[row];
    n = a.row_start[row + 1] - list0;
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

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
  const float scale_log2 = a.scale * kLog2e;

  // A fragments of this warp's 16 query rows for the 16 dims of slice kk.
  auto q_fragment = [&](unsigned(&af)[4], int kk) {
    const int c = kk * 16 + t * 2;
    af[0] = *reinterpret_cast<const unsigned*>(qs16 + r0 * LD + c);
    af[1] = *reinterpret_cast<const unsigned*>(qs16 + r1 * LD + c);
    af[2] = *reinterpret_cast<const unsigned*>(qs16 + r0 * LD + c + 8);
    af[3] = *reinterpret_cast<const unsigned*>(qs16 + r1 * LD + c + 8);
  };
  unsigned qf[kQRegs ? D / 16 : 1][4];

  // One key tile: S = Q·Kᵀ, mask, online softmax, O += P·V.
  auto visit = [&](int kt, int bits, const T* ks, const T* vs) {
    const int k0 = kt * BK;
    const unsigned short* ks16 = reinterpret_cast<const unsigned short*>(ks);
    const unsigned short* vs16 = reinterpret_cast<const unsigned short*>(vs);

    // S = Q·Kᵀ for this warp's 16 rows and BK keys.
    float s[BK / 8][4];
#pragma unroll
    for (int j = 0; j < BK / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      unsigned af[4];
      if constexpr (kQRegs) {
#pragma unroll
        for (int e = 0; e < 4; ++e) af[e] = qf[kk][e];
      } else {
        q_fragment(af, kk);
      }
      if constexpr (kPipelined) {
        // Key groups j and j+1, dims kk·16 + [0, 8) and [8, 16): b0, b1 of group j, then of group j+1.
#pragma unroll
        for (int j = 0; j < BK / 8; j += 2) {
          unsigned kf[4];
          ldmatrix_x4(kf, ks + ((j + (lm >> 1)) * 8 + lr) * LD + kk * 16 + (lm & 1) * 8);
          Mma<T>::run(s[j], af, kf[0], kf[1]);
          Mma<T>::run(s[j + 1], af, kf[2], kf[3]);
        }
      } else {
        const int c = kk * 16 + t * 2;
#pragma unroll
        for (int j = 0; j < BK / 8; ++j) {
          const unsigned short* krow = ks16 + (j * 8 + g) * LD + c;
          Mma<T>::run(s[j], af, *reinterpret_cast<const unsigned*>(krow), *reinterpret_cast<const unsigned*>(krow + 8));
        }
      }
    }

    // Masking: which elements need a test at all, then the test of the mode.
    bool check = k0 + BK > Lk;  // a ragged last tile: keys past kv_len
    if (mode == MaskMode::dense && a.causal) check |= k0 + BK - 1 > q0 + off;
    if (mode == MaskMode::tiles) check |= bits >= 0;
    if (mode == MaskMode::moba) check = true;
    if (check) {
      unsigned long long words[2] = {~0ull, ~0ull};
      if (kSparse && mode == MaskMode::tiles && bits >= 0) {
        words[0] = a.bits[static_cast<long long>(bits) * BQ + r0];
        words[1] = a.bits[static_cast<long long>(bits) * BQ + r1];
      }
#pragma unroll
      for (int j = 0; j < BK / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = j * 8 + t * 2 + (e & 1), rr = e >> 1, key = k0 + col;
          bool ok = key < Lk && ((words[rr] >> col) & 1ull);
          if ((mode == MaskMode::dense || mode == MaskMode::moba) && a.causal) ok = ok && key <= qi[rr] + off;
          if (kSparse && mode == MaskMode::moba) ok = ok && qi[rr] < Lq && moba_selected(a, bh, qi[rr], key);
          s[j][e] = ok ? s[j][e] * scale_log2 : -INFINITY;
        }
    } else {
#pragma unroll
      for (int j = 0; j < BK / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] *= scale_log2;
    }

    // Online softmax: the four threads of a quad share each row.
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < BK / 8; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * rr], s[j][2 * rr + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float new_max = fmaxf(row_max[rr], mx);
      const float base = new_max == -INFINITY ? 0.0f : new_max;  // a row with nothing allowed yet stays 0
      const float alpha = exp2f(row_max[rr] - base);
      row_max[rr] = new_max;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < BK / 8; ++j) {
        s[j][2 * rr] = exp2f(s[j][2 * rr] - base);
        s[j][2 * rr + 1] = exp2f(s[j][2 * rr + 1] - base);
        sum += s[j][2 * rr] + s[j][2 * rr + 1];
      }
      row_sum[rr] = row_sum[rr] * alpha + sum;
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        o[j][2 * rr] *= alpha;
        o[j][2 * rr + 1] *= alpha;
      }
    }

    // O += P·V: the score accumulators of two adjacent 8-key groups are the A fragment of 16 keys.
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      unsigned pf[4];
      pf[0] = Mma<T>::pack(s[2 * kk][0], s[2 * kk][1]);
      pf[1] = Mma<T>::pack(s[2 * kk][2], s[2 * kk][3]);
      pf[2] = Mma<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pf[3] = Mma<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      if constexpr (kPipelined) {
        // Keys kk·16 + [0, 8) and [8, 16), dim groups j and j+1, transposed: b0, b1 of group j, then of j+1.
#pragma unroll
        for (int j = 0; j < D / 8; j += 2) {
          unsigned vf[4];
          ldmatrix_x4_trans(vf, vs + (kk * 16 + (lm & 1) * 8 + lr) * LD + (j + (lm >> 1)) * 8);
          Mma<T>::run(o[j], pf, vf[0], vf[1]);
          Mma<T>::run(o[j + 1], pf, vf[2], vf[3]);
        }
      } else {
        const unsigned short* v0 = vs16 + (kk * 16 + t * 2) * LD + g;
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          const unsigned short* vc = v0 + j * 8;
          Mma<T>::run(o[j], pf, smem_pair(vc, vc + LD), smem_pair(vc + 8 * LD, vc + 9 * LD));
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
      for (int kk = 0; kk < D / 16; ++kk) q_fragment(qf[kk], kk);
    }
    while (cur < n) {
      const int nxt = next_visit(cur + 1);
      if (nxt < n) issue(nxt, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();  // everything but the group just committed: this step's tile has landed
      __syncthreads();
      int bits;
      const int kt = tile_of(cur, bits);
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
      __syncthreads();
      visit(kt, bits, ks0, vs0);
    }
  }

  // Normalise and write; a row that saw no key is written as zeros.
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    float l = row_sum[rr];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    if (qi[rr] >= Lq) continue;
    T* orow = og + static_cast<long long>(qi[rr]) * D + t * 2;
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      *reinterpret_cast<unsigned*>(orow + j * 8) = Mma<T>::pack(o[j][2 * rr] * inv, o[j][2 * rr + 1] * inv);
  }
}

}  // namespace attnbench::cuda::flash_mma
