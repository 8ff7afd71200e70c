// The tiled online-softmax attention forward pass on the CPU (FlashAttention's algorithm), reusable by
// every method that computes exact softmax attention over a mask: flash, and the sparse methods that
// differ only in which tiles they visit.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "attnbench/mask.hpp"
#include "attnbench/problem.hpp"
#include "attnbench/tensor.hpp"

namespace attnbench::kernels {

// A 64-byte aligned float buffer allocated through operator new, so the harness's memory accounting
// counts it like any other heap allocation.
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(std::size_t n)
      : data_(static_cast<float*>(::operator new (std::max<std::size_t>(n, 1) * sizeof(float), std::align_val_t{64}))),
        size_(n) {}
  float* data() { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  struct Deleter {
    void operator()(float* p) const { ::operator delete (p, std::align_val_t{64}); }
  };
  std::unique_ptr<float, Deleter> data_;
  std::size_t size_ = 0;
};

// How the kernel tiles the problem, and which tiles the mask empties.
//
// block_maps: empty when the mask has a closed form the kernel knows (full, causal) or when the kernel
// should ask Mask::tile() itself; one map when the mask is the same for every (batch, head); otherwise
// batch·heads maps indexed b·heads + h. A sparse method may hand in maps of its own choosing: a tile
// the map calls empty is skipped, full is computed without predicate calls, partial applies
// mask->allowed() element by element (by closed form for a causal mask). Maps, when present, take
// precedence over the closed forms.
struct FlashConfig {
  std::int64_t block_q = 64;
  std::int64_t block_k = 128;
  std::vector<BlockMap> block_maps;
};

// Builds the config for `p`: block maps are lowered from p.mask unless it is full or causal.
FlashConfig make_flash_config(const Problem& p, std::int64_t block_q, std::int64_t block_k);

// One thread's tile buffers for the online-softmax tile loop (this file's forward pass and the distributed
// block attention), in floats from the start of its slice, every region on a 64-byte boundary.
struct TileLayout {
  std::int64_t q_tile = 0;  // [head_dim][cols] queries, transposed and pre-scaled
  std::int64_t k_tile = 0;  // [block_k][head_dim] keys widened to fp32 (none when keys are read in place)
  std::int64_t v_tile = 0;  // [block_k][vdim] values widened / padded (when not read in place)
  std::int64_t scores = 0;  // [block_k][cols] scores, then probabilities, transposed
  std::int64_t acc = 0;     // [max(block_q rounded to the output rows, cols)][vdim] unnormalised output
  std::int64_t row_max = 0, row_sum = 0, alpha = 0;  // [cols] online-softmax state per query
  std::int64_t per_thread = 0;
};
// cols: queries of a tile rounded up to the vector width; vdim: value_dim rounded up likewise;
// widened_keys: whether keys need a tile of their own (not fp32 read in place).
TileLayout tile_layout(std::int64_t head_dim, std::int64_t cols, std::int64_t vdim, std::int64_t block_q,
                       std::int64_t block_k, bool widened_keys);

// The regions of one thread's slice.
struct TileBuffers {
  TileBuffers(float* slice, const TileLayout& l)
      : qt(slice + l.q_tile),
        ktile(slice + l.k_tile),
        vtile(slice + l.v_tile),
        st(slice + l.scores),
        acc(slice + l.acc),
        row_max(slice + l.row_max),
        row_sum(slice + l.row_sum),
        alpha(slice + l.alpha) {}
  float *qt, *ktile, *vtile, *st, *acc, *row_max, *row_sum, *alpha;
};

// Per-thread tile buffers, sized once for a problem and config so that the forward pass allocates
// nothing. Memory is O(threads · tile), independent of the sequence lengths.
class FlashWorkspace {
 public:
  FlashWorkspace() = default;
  FlashWorkspace(const Problem& p, const FlashConfig& cfg, int threads);
  int threads() const { return threads_; }

  // The layout of one thread's slice; all strides are multiples of the vector width.
  struct Layout : TileLayout {
    std::int64_t cols = 0;  // block_q rounded up to the vector width: queries run along lanes
    std::int64_t vdim = 0;  // value_dim rounded up to the vector width
  };
  const Layout& layout() const { return layout_; }
  float* thread_slice(int t) { return buffer_.data() + static_cast<std::size_t>(t) * layout_.per_thread; }

 private:
  Layout layout_;
  int threads_ = 0;
  AlignedFloats buffer_;
};

// out[b, h, q, :] = softmax(scale · q·Kᵀ over the allowed keys) · V, for fp32 or bf16 inputs (fp32
// arithmetic); `out` has the input dtype. Rows whose mask allows no key are written as zeros.
// Runs on at most ws.threads() OpenMP threads.
void flash_forward_cpu(const Problem& p, const Inputs& in, Tensor& out, const FlashConfig& cfg, FlashWorkspace& ws);

}  // namespace attnbench::kernels
