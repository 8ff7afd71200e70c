// The tensor-core flash kernel's own source (kernels/cuda/flash_mma_kernel.cuh: the pipelined variant of
// flash and the plain one of flash_sync) run on the CPU under the warp emulator, against the float64
// oracle, with arguments built by the device plan's own flash_args_for. Where no GPU is present this is
// the check of the kernel's indexing: the mma.sync fragments, the ldmatrix row addresses (.trans for V),
// the cp.async double buffering (copies landing as late as the ISA allows, and at issue: the same bits),
// the masking modes and the online softmax. It does not check timing or the hardware's rounding of a
// product's additions (the emulator adds in double); the device tests (tests/cuda/) do that on a GPU.
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cuda_emulated/emulated_kernels.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;
using attnbench::testing::emulated::run_flash;
using attnbench::testing::emulated::Way;

namespace {

constexpr Way kLockstep{true, emu::CopyLanding::at_wait, emu::Schedule::round_robin};
// cp.async data landing at issue while one warp runs ahead (or the last one does): a stage refilled
// before every warp has read it would show.
constexpr Way kAhead{true, emu::CopyLanding::at_issue, emu::Schedule::warp_by_warp};
constexpr Way kBehind{true, emu::CopyLanding::at_issue, emu::Schedule::reversed_warps};
constexpr Way kPlain{false, emu::CopyLanding::at_wait, emu::Schedule::warp_by_warp};
// The pipelined kernel at 16 query rows per warp (64-query tiles), where the default is 32 (D <= 128).
constexpr Way kNarrow{true, emu::CopyLanding::at_wait, emu::Schedule::round_robin, 16};

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

// The pipelined kernel against the oracle; the same kernel with its copies landing early under the two
// skewed schedules, the plain kernel (flash_sync) and the pipelined one at the other query tile must give
// the same bits wherever their key tiles are the same: the same fragments reach the same mma in the same
// order, however and whenever they were loaded and whichever warp holds a row (a key tile that a wider
// query tile visits but a row cannot see leaves that row's state exactly as it was).
void check_kernel(const Problem& p, std::uint64_t seed) {
  INFO(p.describe() << " mask " << p.mask->name() << " seed " << seed);
  const Inputs in = datasets::gaussian_inputs(p, seed);
  const Tensor ref = testing::run_method("reference", p, in);
  const auto late = run_flash(p, *p.mask, in, kLockstep);
  const auto ahead = run_flash(p, *p.mask, in, kAhead);
  const auto behind = run_flash(p, *p.mask, in, kBehind);
  const auto plain = run_flash(p, *p.mask, in, kPlain);
  CHECK(late.stats.async_copies > 0);
  CHECK(plain.stats.async_copies == 0);
  // The K and V tiles' rows are padded by 8 elements so that ldmatrix reads them without bank conflicts.
  CHECK(late.stats.ldmatrix_bank_conflicts == 0);
  testing::check_matches_reference(late.out, ref, p.dtype);  // fp16/bf16: within 1e-2
  CHECK(same_bits(late.out, ahead.out));
  CHECK(same_bits(late.out, behind.out));
  if (p.head_dim == 64) CHECK(same_bits(late.out, plain.out));
  if (p.head_dim <= 128) {
    const auto narrow = run_flash(p, *p.mask, in, kNarrow);
    const std::int64_t bh = p.batch * p.heads;  // 128-query tiles by default, 64 at 16 rows per warp
    CHECK(late.stats.blocks == bh * ((p.q_len + 127) / 128));
    CHECK(narrow.stats.blocks == bh * ((p.q_len + 63) / 64));
    CHECK(narrow.stats.ldmatrix_bank_conflicts == 0);
    // D = 128 at 32 rows per warp takes 32-key tiles, the others 64: other tile boundaries of the online
    // softmax, other roundings; the same bits where the key tiles are the same.
    testing::check_matches_reference(narrow.out, ref, p.dtype);
    CHECK(same_bits(narrow.out, plain.out));
    if (p.head_dim == 64) CHECK(same_bits(late.out, narrow.out));
  } else {
    CHECK(same_bits(late.out, plain.out));
  }
}

// Queries before `first` see nothing (whole query tiles with an empty tile list), the others causally.
class LateQueries final : public Mask {
 public:
  LateQueries(MaskShape s, std::int64_t first) : Mask("test_late_queries", Params{}, s), first_(first) {}
  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    return q >= first_ && k <= q + shape().offset();
  }

 private:
  std::int64_t first_;
};

// The keys MoBA's selection leaves a query: its selected blocks, under the causal closed form if causal.
class SelectedBlocks final : public Mask {
 public:
  SelectedBlocks(MaskShape s, const std::vector<std::uint32_t>& sel, std::int64_t block, std::int64_t words,
                 bool causal)
      : Mask("test_moba_selection", Params{}, s), sel_(sel), block_(block), words_(words), causal_(causal) {}
  bool allowed(std::int64_t b, std::int64_t h, std::int64_t q, std::int64_t k) const override {
    if (causal_ && k > q + shape().offset()) return false;
    const std::int64_t blk = k / block_;
    const std::int64_t row = (b * shape().heads + h) * shape().q_len + q;
    return (sel_[static_cast<std::size_t>(row * words_ + blk / 32)] >> (blk % 32)) & 1u;
  }
  bool varies_with_batch_or_head() const override { return true; }

 private:
  const std::vector<std::uint32_t>& sel_;
  std::int64_t block_, words_;
  bool causal_;
};

}  // namespace

TEST_CASE("emulated tensor-core flash kernel matches the float64 reference, full and causal",
          "[cuda_emulated][flash]") {
  const Dtype dtype = GENERATE(Dtype::f16, Dtype::bf16);
  const std::int64_t d = GENERATE(64, 128, 256);
  const auto mask = GENERATE(std::string("full"), std::string("causal"));
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1, 1, d, d},      // a single query and key
      {1, 4, 2, 100, 100, d, d},  // GQA, a ragged last tile of queries and keys
      {1, 2, 1, 65, 150, d, d},   // MQA, cross attention Lq < Lk
      {2, 1, 1, 100, 37, d, d},   // Lq > Lk: under causal the first 63 rows see nothing
  };
  std::uint64_t seed = 501;
  for (const Shape& s : shapes) {
    const Problem p = testing::make_problem(s, mask, dtype);
    check_kernel(p, seed++);
  }
}

TEST_CASE("emulated tensor-core flash kernel follows lowered masks: documents and per-head windows",
          "[cuda_emulated][flash]") {
  const Dtype dtype = GENERATE(Dtype::f16, Dtype::bf16);
  const std::int64_t d = GENERATE(64, 256);  // key tiles of 64 and of 32
  Problem p = testing::make_problem({1, 2, 1, 150, 150, d, d}, "full", dtype);
  p.mask = make_mask("document", {{"doc_lens", "50,70,7,23"}, {"causal", true}}, p.mask_shape());
  check_kernel(p, 601);
  Problem w = testing::make_problem({2, 2, 1, 130, 170, d, d}, "full", dtype);
  w.mask = std::make_shared<const testing::ShiftedWindow>(w.mask_shape(), 7, 3, 45);
  check_kernel(w, 602);
  Problem late = testing::make_problem({1, 2, 1, 200, 200, d, d}, "full", dtype);
  late.mask = std::make_shared<const LateQueries>(late.mask_shape(), 130);  // query tiles 0 and 1: nothing
  check_kernel(late, 603);
}

TEST_CASE("emulated tensor-core flash kernel follows MoBA selections", "[cuda_emulated][flash][moba]") {
  const Dtype dtype = GENERATE(Dtype::f16, Dtype::bf16);
  const bool causal = GENERATE(true, false);
  const std::int64_t block = GENERATE(24, 100);  // several blocks per key tile, and blocks across tiles
  const std::int64_t d = GENERATE(64, 128);      // 64- and 32-key tiles at 32 rows per warp
  Problem p = testing::make_problem({1, 2, 1, 140, 200, d, d}, causal ? "causal" : "full", dtype);
  const cuda::MobaSetup moba{block, 2};
  const std::int64_t blocks = (p.kv_len + block - 1) / block, words = (blocks + 31) / 32;
  std::vector<std::uint32_t> sel(static_cast<std::size_t>(p.batch * p.heads * p.q_len * words), 0u);
  std::mt19937_64 rng(700 + static_cast<std::uint64_t>(block));
  for (std::size_t row = 0; row < sel.size() / static_cast<std::size_t>(words); ++row)
    for (std::int64_t blk = 0; blk < blocks; ++blk)
      if (rng() % 3 == 0) sel[row * static_cast<std::size_t>(words) + blk / 32] |= 1u << (blk % 32);
  // The first query tile of every head selects nothing: the kernel visits no key tile for it.
  for (std::int64_t bh = 0; bh < p.batch * p.heads; ++bh)
    for (std::int64_t q = 0; q < 64; ++q)
      for (std::int64_t w = 0; w < words; ++w) sel[static_cast<std::size_t>((bh * p.q_len + q) * words + w)] = 0u;
  Problem oracle = p;
  oracle.mask = std::make_shared<const SelectedBlocks>(p.mask_shape(), sel, block, words, causal);
  INFO("block " << block << (causal ? " causal" : " full"));
  // The kernel runs p (full or causal plus the selection); the oracle runs the selection as a mask.
  const Inputs in = datasets::gaussian_inputs(p, 701);
  const Tensor ref = testing::run_method("reference", oracle, in);
  const auto late = run_flash(p, *p.mask, in, kLockstep, &moba, &sel);
  const auto ahead = run_flash(p, *p.mask, in, kAhead, &moba, &sel);
  const auto plain = run_flash(p, *p.mask, in, kPlain, &moba, &sel);
  const double err = testing::relative_l2(late.out, ref);
  INFO("relative L2 error " << err);
  CHECK(err <= 1e-2);
  CHECK(same_bits(late.out, ahead.out));
  const auto narrow = run_flash(p, *p.mask, in, kNarrow, &moba, &sel);
  CHECK(testing::relative_l2(narrow.out, ref) <= 1e-2);
  CHECK(same_bits(narrow.out, plain.out));
  if (d == 64) CHECK(same_bits(late.out, narrow.out));  // the same 64-key tiles
}
