// The CUDA kernels' own source (kernels/cuda/*_kernel.cuh, baselines/cuda/dense_kernels.cuh) compiled as
// host C++ over the warp emulator's CUDA surface, and launched as the device plans launch them
// (kernels/cuda/flash.cu, flash_mma.cu, flash_fp32.cu, moba_select.cu, decode_splitk.cu,
// baselines/cuda/dense.cu, cublas.cu, kernels/distributed/block_attention.cu): keep the dispatch here in
// step with theirs.
#include "kernels/cuda_emulated/emulated_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "baselines/cuda/cublas_calls.hpp"
#include "kernels/cuda/block_lowering.hpp"
// The emulator's CUDA surface last: it defines macros (threadIdx, __global__, ...).
#include "support/warp_emulator_cuda.hpp"
//
#include "baselines/cuda/dense_kernels.cuh"
#include "kernels/cuda/decode_splitk_kernel.cuh"
#include "kernels/cuda/flash_fp32_kernel.cuh"
#include "kernels/cuda/flash_mma_kernel.cuh"
#include "kernels/cuda/moba_select_kernel.cuh"
#include "kernels/distributed/block_attention_kernel.cuh"

namespace attnbench::testing::emulated {
namespace {

namespace fm = cuda::flash_mma;

template <class T, int D, int M, bool kSparse, bool kPipelined>
emu::LaunchStats launch_mma_instance(const cuda::FlashArgs& a, const emu::LaunchOptions& o) {
  constexpr int BQ = fm::block_q<M>();
  const emu::Dim3 grid{static_cast<unsigned>((a.q_len + BQ - 1) / BQ), static_cast<unsigned>(a.batch * a.heads), 1};
  if (grid.x == 0 || grid.y == 0) return {};
  return emu::launch(
      grid, fm::kThreads, fm::smem_bytes<D, M, kPipelined>(2),
      [&a] { fm::flash_mma_kernel<T, D, fm::block_k<D, M>(), M, kSparse, kPipelined>(a); }, o);
}

// flash_mma.cu's launch_rows: 32 rows per warp for the pipelined kernel at D <= 128.
template <class T, int D, bool kSparse, bool kPipelined>
emu::LaunchStats launch_mma_rows(const cuda::FlashArgs& a, const emu::LaunchOptions& o) {
  if constexpr (kPipelined && D <= 128) {
    if (a.warp_rows == 32) return launch_mma_instance<T, D, 2, kSparse, kPipelined>(a, o);
  }
  if (a.warp_rows != 16)
    throw std::logic_error("flash_mma: no kernel with " + std::to_string(a.warp_rows) + " rows per warp here");
  return launch_mma_instance<T, D, 1, kSparse, kPipelined>(a, o);
}

template <class T, int D, bool kSparse>
emu::LaunchStats launch_mma_variant(const cuda::FlashArgs& a, const emu::LaunchOptions& o) {
  return a.pipelined ? launch_mma_rows<T, D, kSparse, true>(a, o) : launch_mma_rows<T, D, kSparse, false>(a, o);
}

template <class T, int D>
emu::LaunchStats launch_mma_mode(const cuda::FlashArgs& a, const emu::LaunchOptions& o) {
  return a.mode == cuda::MaskMode::dense ? launch_mma_variant<T, D, false>(a, o) : launch_mma_variant<T, D, true>(a, o);
}

// launch_flash_mma: head dim, mask mode and variant pick the instance.
template <class T>
emu::LaunchStats launch_mma(const cuda::FlashArgs& a, const emu::LaunchOptions& o) {
  if (a.head_dim != a.value_dim) throw std::logic_error("flash_mma: value_dim must equal head_dim");
  if (!cuda::flash_mma_tiles_match(a))
    throw std::logic_error("flash_mma: the arguments were built for other tile sizes");
  switch (a.head_dim) {
    case 64:
      return launch_mma_mode<T, 64>(a, o);
    case 128:
      return launch_mma_mode<T, 128>(a, o);
    case 256:
      return launch_mma_mode<T, 256>(a, o);
    default:
      throw std::logic_error("flash_mma: head_dim " + std::to_string(a.head_dim) + " has no kernel");
  }
}

// launch_flash_fp32
emu::LaunchStats launch_fp32(const cuda::FlashArgs& a, const emu::LaunchOptions& o) {
  namespace f = cuda::flash_fp32;
  const emu::Dim3 grid{static_cast<unsigned>((a.q_len + f::kWarps - 1) / f::kWarps),
                       static_cast<unsigned>(a.batch * a.heads), 1};
  if (grid.x == 0 || grid.y == 0) return {};
  return emu::launch(
      grid, f::kWarps * 32, 0, [&a] { f::flash_fp32_kernel(a); }, o);
}

// launch_moba_select: block mean keys, then each query's selection.
template <class T>
void launch_moba_gate(const cuda::FlashArgs& a, int topk, float* means, std::uint32_t* sel,
                      const emu::LaunchOptions& o) {
  namespace g = cuda::moba_gate;
  const int blocks = (a.kv_len + a.moba_block - 1) / a.moba_block;
  if (blocks == 0 || a.q_len == 0 || a.batch * a.heads == 0) return;
  emu::launch(
      {static_cast<unsigned>(blocks), static_cast<unsigned>(a.batch * a.kv_heads), 1}, 128, 0,
      [&] { g::block_mean_keys_kernel<T>(a, means); }, o);
  emu::launch(
      {static_cast<unsigned>((a.q_len + g::kWarps - 1) / g::kWarps), static_cast<unsigned>(a.batch * a.heads), 1},
      g::kWarps * 32, static_cast<std::size_t>(g::select_smem_bytes(a, blocks)),
      [&] { g::moba_select_kernel<T>(a, topk, blocks, means, sel); }, o);
}

namespace dk = cuda::decode;

template <class T, int kMaxD, int kCols>
void launch_decode_split(const dk::SplitArgs& a, std::int64_t row_tiles, std::int64_t batch,
                         const emu::LaunchOptions& o) {
  const emu::Dim3 grid{static_cast<unsigned>(a.splits), static_cast<unsigned>(row_tiles),
                       static_cast<unsigned>(batch * a.kv_heads)};
  emu::launch(
      grid, dk::kThreads, 0, [&a] { dk::decode_split_kernel<T, kMaxD, kCols>(a); }, o);
}

// decode_splitk.cu's launch: the instance by head and value dim, then the merge unless direct.
template <class T>
void launch_decode(const dk::SplitArgs& a, std::int64_t row_tiles, std::int64_t batch, const emu::LaunchOptions& o) {
  const bool narrow_d = a.head_dim <= 128, narrow_dv = a.value_dim <= dk::kThreads;
  if (narrow_d && narrow_dv)
    launch_decode_split<T, 128, 1>(a, row_tiles, batch, o);
  else if (narrow_d)
    launch_decode_split<T, 128, 2>(a, row_tiles, batch, o);
  else if (narrow_dv)
    launch_decode_split<T, 256, 1>(a, row_tiles, batch, o);
  else
    launch_decode_split<T, 256, 2>(a, row_tiles, batch, o);
  if (!a.direct)
    emu::launch(
        {static_cast<unsigned>(batch * a.heads * a.q_len), 1, 1}, dk::kMergeThreads, 0,
        [&a] { dk::decode_merge_kernel<T>(a); }, o);
}

template <class F>
void by_dtype(Dtype d, F&& f) {
  switch (d) {
    case Dtype::f32:
      return f(float{});
    case Dtype::f16:
      return f(emu::Half{});
    case Dtype::bf16:
      return f(emu::Bf16{});
    default:
      throw std::logic_error("the CUDA kernels take fp32, fp16 or bf16 inputs");
  }
}

namespace dp = cuda::dense_path;

unsigned tiles16(std::int64_t n) { return static_cast<unsigned>((n + dp::kTile - 1) / dp::kTile); }

// launch_masked_softmax
template <class TP>
void launch_softmax(const float* s, TP* probs, const Problem& p, const dp::ScoreMaskView& view,
                    const emu::LaunchOptions& o) {
  emu::launch(
      {static_cast<unsigned>(p.batch * p.heads * p.q_len), 1, 1}, dp::kSoftmaxThreads, 0,
      [&] { dp::dense_masked_softmax<TP>(s, probs, p.q_len, p.kv_len, view); }, o);
}

// cublasGemmStridedBatchedEx as its documentation defines it, accumulating in double and rounding once.
template <class TA, class TB, class TC>
void strided_gemm(const dp::StridedGemm& g, float alpha, const TA* a, const TB* b, TC* c) {
  for (int i = 0; i < g.batch; ++i) {
    const TA* ai = a + i * g.stride_a;
    const TB* bi = b + i * g.stride_b;
    TC* ci = c + i * g.stride_c;
    for (int col = 0; col < g.n; ++col)
      for (int row = 0; row < g.m; ++row) {
        double acc = 0.0;
        for (int l = 0; l < g.k; ++l) {
          const double x = cuda::to_float(g.trans_a ? ai[l + static_cast<long long>(row) * g.lda]
                                                    : ai[row + static_cast<long long>(l) * g.lda]);
          const double y = cuda::to_float(g.trans_b ? bi[col + static_cast<long long>(l) * g.ldb]
                                                    : bi[l + static_cast<long long>(col) * g.ldb]);
          acc += x * y;
        }
        ci[row + static_cast<long long>(col) * g.ldc] = cuda::from_float<TC>(static_cast<float>(alpha * acc));
      }
  }
}

}  // namespace

FlashRun run_flash(const Problem& p, const Mask& mask, const Inputs& in, const Way& way, const cuda::MobaSetup* moba,
                   const std::vector<std::uint32_t>* given_sel) {
  cuda::LoweredMask lowered;
  cuda::FlashArgs a = cuda::flash_args_for(p, mask, moba, {way.pipelined, way.warp_rows}, lowered);
  FlashRun r{make_output(p, p.dtype), {}, {}};
  r.out.poison();
  const std::vector<unsigned long long> bits(lowered.bits.begin(), lowered.bits.end());
  a.q = in.q.data();
  a.k = in.k.data();
  a.v = in.v.data();
  a.o = r.out.data();
  a.row_start = lowered.row_start.data();
  a.entries = lowered.entries.data();
  a.bits = bits.data();
  emu::LaunchOptions o;
  o.copies = way.landing;
  o.schedule = way.schedule;
  o.global = {{in.q.data(), in.q.nbytes()}, {in.k.data(), in.k.nbytes()}, {in.v.data(), in.v.nbytes()}};
  std::vector<float> means;
  if (moba) {
    if (given_sel) {
      r.sel = *given_sel;
    } else {
      const std::int64_t blocks = (p.kv_len + moba->block - 1) / moba->block;
      means.assign(static_cast<std::size_t>(p.batch * p.kv_heads * blocks * p.head_dim), std::nanf(""));
      r.sel.assign(static_cast<std::size_t>(p.batch * p.heads * p.q_len * a.sel_words), 0xdeadbeefu);
      by_dtype(p.dtype, [&](auto t) {
        launch_moba_gate<decltype(t)>(a, static_cast<int>(moba->topk), means.data(), r.sel.data(), o);
      });
    }
    a.sel = r.sel.data();
    o.global.push_back({r.sel.data(), r.sel.size() * sizeof(std::uint32_t)});
  }
  if (p.dtype == Dtype::f32)
    r.stats = launch_fp32(a, o);
  else if (p.dtype == Dtype::f16)
    r.stats = launch_mma<emu::Half>(a, o);
  else
    r.stats = launch_mma<emu::Bf16>(a, o);
  return r;
}

Tensor run_decode_splitk(const Problem& p, const Inputs& in, std::int64_t splits, emu::Schedule schedule) {
  dk::SplitArgs a = dk::split_args_for(p, splits);
  Tensor out = make_output(p, p.dtype);
  out.poison();
  const std::size_t slots = dk::part_slots(p, splits);
  std::vector<float> part_o(slots * static_cast<std::size_t>(p.value_dim), std::nanf("")), part_m(slots, std::nanf("")),
      part_l(slots, std::nanf(""));
  a.q = in.q.data();
  a.k = in.k.data();
  a.v = in.v.data();
  a.o = out.data();
  a.part_o = part_o.data();
  a.part_m = part_m.data();
  a.part_l = part_l.data();
  emu::LaunchOptions o;
  o.schedule = schedule;
  by_dtype(p.dtype, [&](auto t) { launch_decode<decltype(t)>(a, dk::row_tiles_of(p), p.batch, o); });
  return out;
}

Tensor run_dense(const Problem& p, const Inputs& in, emu::Schedule schedule) {
  dp::HostScoreMask mask = dp::host_score_mask(p);
  mask.view.bytes = mask.bytes.data();
  std::vector<float> s(static_cast<std::size_t>(p.batch * p.heads * p.q_len * p.kv_len), std::nanf(""));
  Tensor out = make_output(p, p.dtype);
  out.poison();
  emu::LaunchOptions o;
  o.schedule = schedule;
  const emu::Dim3 block{dp::kTile, dp::kTile, 1};
  const unsigned bh = static_cast<unsigned>(p.batch * p.heads);
  by_dtype(p.dtype, [&](auto t) {
    using T = decltype(t);
    const T* q = static_cast<const T*>(in.q.data());
    const T* k = static_cast<const T*>(in.k.data());
    const T* v = static_cast<const T*>(in.v.data());
    T* o_ptr = static_cast<T*>(out.data());
    emu::launch(
        {tiles16(p.kv_len), tiles16(p.q_len), bh}, block, 0,
        [&] {
          dp::dense_gemm<T, T, float, true>(q, k, s.data(), p.q_len, p.kv_len, p.head_dim, static_cast<float>(p.scale),
                                            p.heads, p.group_size(), p.kv_heads);
        },
        o);
    launch_softmax<float>(s.data(), s.data(), p, mask.view, o);
    emu::launch(
        {tiles16(p.value_dim), tiles16(p.q_len), bh}, block, 0,
        [&] {
          dp::dense_gemm<float, T, T, false>(s.data(), v, o_ptr, p.q_len, p.value_dim, p.kv_len, 1.0f, p.heads,
                                             p.group_size(), p.kv_heads);
        },
        o);
  });
  return out;
}

Tensor run_cublas(const Problem& p, const Inputs& in, emu::Schedule schedule) {
  dp::HostScoreMask mask = dp::host_score_mask(p);
  mask.view.bytes = mask.bytes.data();
  const std::size_t elements = static_cast<std::size_t>(p.batch * p.heads * p.q_len * p.kv_len);
  std::vector<float> s(elements, std::nanf(""));
  Tensor out = make_output(p, p.dtype);
  out.poison();
  emu::LaunchOptions o;
  o.schedule = schedule;
  by_dtype(p.dtype, [&](auto t) {
    using T = decltype(t);
    const T* q = static_cast<const T*>(in.q.data());
    const T* k = static_cast<const T*>(in.k.data());
    const T* v = static_cast<const T*>(in.v.data());
    T* o_ptr = static_cast<T*>(out.data());
    strided_gemm(dp::cublas_scores_gemm(p), static_cast<float>(p.scale), k, q, s.data());
    if constexpr (std::is_same_v<T, float>) {
      launch_softmax<float>(s.data(), s.data(), p, mask.view, o);
      strided_gemm(dp::cublas_pv_gemm(p), 1.0f, v, s.data(), o_ptr);
    } else {
      std::vector<T> probs(elements, T{0xffff});
      launch_softmax<T>(s.data(), probs.data(), p, mask.view, o);
      strided_gemm(dp::cublas_pv_gemm(p), 1.0f, v, probs.data(), o_ptr);
    }
  });
  return out;
}

namespace {

namespace bk = kernels::distributed::gpu::block_kernels;
using kernels::distributed::gpu::BlockArgs;

// DeviceState's layout: row max [rows], row sum [rows], output [rows][value_dim].
struct State {
  std::int64_t rows, dv;
  std::vector<float> buf;
  State(std::int64_t r, std::int64_t v) : rows(r), dv(v), buf(static_cast<std::size_t>(r * (2 + v)), std::nanf("")) {}
  float* max() { return buf.data(); }
  float* sum() { return buf.data() + rows; }
  float* acc() { return buf.data() + 2 * rows; }
};

void launch_reset(State& st, const emu::LaunchOptions& o) {
  const long long total = st.rows * (2 + st.dv);
  emu::launch(
      {bk::grid_for(total), 1, 1}, bk::kThreads, 0, [&] { bk::reset_kernel(st.max(), st.rows, total); }, o);
}

// launch_copy_rows: 4-byte units where rows and pointers allow, else 2-byte units.
void launch_copy_rows(const void* src, void* dst, long long bh, long long len, long long dim, std::size_t esize,
                      long long first, long long stride, long long rows, bool scatter, const emu::LaunchOptions& o) {
  const long long row_bytes = dim * static_cast<long long>(esize);
  const bool words = row_bytes % 4 == 0 && reinterpret_cast<std::uintptr_t>(src) % 4 == 0 &&
                     reinterpret_cast<std::uintptr_t>(dst) % 4 == 0;
  const long long units = words ? row_bytes / 4 : row_bytes / 2;
  emu::launch(
      {bk::grid_for(bh * rows * units), 1, 1}, bk::kThreads, 0,
      [&] {
        if (words)
          bk::copy_rows_kernel(static_cast<const std::uint32_t*>(src), static_cast<std::uint32_t*>(dst), bh, len, units,
                               first, stride, rows, scatter);
        else
          bk::copy_rows_kernel(static_cast<const std::uint16_t*>(src), static_cast<std::uint16_t*>(dst), bh, len, units,
                               first, stride, rows, scatter);
      },
      o);
}

}  // namespace

Tensor run_block_attention(const Problem& p, const Inputs& in, const std::vector<std::int64_t>& starts, bool halves) {
  if (!p.mask->is_full() && !p.mask->is_causal()) throw std::logic_error("run_block_attention: full or causal");
  const emu::LaunchOptions o;
  const std::int64_t rows = p.batch * p.heads * p.q_len, esize = static_cast<std::int64_t>(dtype_size(p.dtype));
  State a(rows, p.value_dim), b(rows, p.value_dim);
  launch_reset(a, o);
  launch_reset(b, o);
  const std::int64_t bkv = p.batch * p.kv_heads, off = p.kv_len - p.q_len;
  for (std::size_t j = 0; j < starts.size(); ++j) {
    const std::int64_t k0 = starts[j], k1 = j + 1 < starts.size() ? starts[j + 1] : p.kv_len, n = k1 - k0;
    std::vector<unsigned char> kb(static_cast<std::size_t>(bkv * n * p.head_dim * esize), 0xff),
        vb(static_cast<std::size_t>(bkv * n * p.value_dim * esize), 0xff);
    launch_copy_rows(in.k.data(), kb.data(), bkv, p.kv_len, p.head_dim, static_cast<std::size_t>(esize), k0, 1, n,
                     false, o);
    launch_copy_rows(in.v.data(), vb.data(), bkv, p.kv_len, p.value_dim, static_cast<std::size_t>(esize), k0, 1, n,
                     false, o);
    // Key k0 + j is visible to query i when k0 + j <= i + off.
    const BlockArgs args =
        kernels::distributed::gpu::block_args_for(p, in.q.data(), kb.data(), vb.data(), p.q_len, n,
                                                  p.mask->is_causal() ? off - k0 : kernels::distributed::gpu::kNoMask);
    State& st = halves && k0 >= p.kv_len / 2 ? b : a;
    const emu::Dim3 grid{static_cast<unsigned>((p.q_len + bk::kWarps - 1) / bk::kWarps),
                         static_cast<unsigned>(std::min<long long>(p.batch * p.heads, bk::kMaxGridY)), 1};
    by_dtype(p.dtype, [&](auto t) {
      using T = decltype(t);
      emu::launch(
          grid, bk::kWarps * 32, 0, [&] { bk::block_attention_kernel<T>(args, st.max(), st.sum(), st.acc()); }, o);
    });
  }
  if (halves) {
    std::vector<float> gmax(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) gmax[static_cast<std::size_t>(r)] = std::max(a.max()[r], b.max()[r]);
    const long long total = rows * (p.value_dim + 1);
    for (State* st : {&a, &b})
      emu::launch(
          {bk::grid_for(total), 1, 1}, bk::kThreads, 0,
          [&] { bk::rescale_kernel(st->max(), st->sum(), st->acc(), gmax.data(), rows, p.value_dim); }, o);
    for (std::int64_t x = 0; x < rows * (1 + p.value_dim); ++x) a.sum()[x] += b.sum()[x];  // sum and output adjacent
  }
  Tensor out = make_output(p, p.dtype);
  out.poison();
  const long long total = rows * p.value_dim;
  by_dtype(p.dtype, [&](auto t) {
    using T = decltype(t);
    emu::launch(
        {bk::grid_for(total), 1, 1}, bk::kThreads, 0,
        [&] { bk::normalise_kernel<T>(a.sum(), a.acc(), static_cast<T*>(out.data()), rows, p.value_dim); }, o);
  });
  return out;
}

}  // namespace attnbench::testing::emulated
