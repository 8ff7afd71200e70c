// Float64 definitions of the dynamic-sparse methods (top-k keys, block selection by mean key or Quest
// bound), written from the papers in plain loops, for the tests of topk, moba, quest and landmark_block;
// and the checks those tests (and memeff's and decode_splitk's) share.
#pragma once
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "attnbench/mask.hpp"
#include "attnbench/problem.hpp"
#include "attnbench/tensor.hpp"
#include "datasets/generators.hpp"
#include "support/oracle_checks.hpp"
#include "support/problems.hpp"

namespace attnbench::testing {

// A mask the dynamic-sparse methods must refuse: a window of 8 keys ending at the query.
class NarrowWindowMask final : public Mask {
 public:
  explicit NarrowWindowMask(MaskShape s) : Mask("test_window", Params{}, s) {}
  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t at = q + shape().offset();
    return k <= at && k > at - 8;
  }
};

// An oracle output, with the rows whose selection is a near-tie (scores of the last kept and the first
// dropped candidate closer than the fp32 kernels can resolve): those rows may legitimately differ.
struct OracleResult {
  std::vector<double> out;      // [batch][heads][q_len][value_dim]
  std::vector<bool> ambiguous;  // [batch][heads][q_len]
};

inline double q_elem(const Problem& p, const Inputs& in, std::int64_t b, std::int64_t h, std::int64_t q,
                     std::int64_t d) {
  return in.q.get(((b * p.heads + h) * p.q_len + q) * p.head_dim + d);
}
inline double k_elem(const Problem& p, const Inputs& in, std::int64_t b, std::int64_t kvh, std::int64_t k,
                     std::int64_t d) {
  return in.k.get(((b * p.kv_heads + kvh) * p.kv_len + k) * p.head_dim + d);
}
inline double v_elem(const Problem& p, const Inputs& in, std::int64_t b, std::int64_t kvh, std::int64_t k,
                     std::int64_t c) {
  return in.v.get(((b * p.kv_heads + kvh) * p.kv_len + k) * p.value_dim + c);
}

// softmax(scale·q·k) over `keys`, times V, in float64, written into out at row (b, h, q).
inline void attend_exactly(const Problem& p, const Inputs& in, std::int64_t b, std::int64_t h, std::int64_t q,
                           const std::vector<std::int64_t>& keys, std::vector<double>& out) {
  const std::int64_t kvh = p.kv_head_of(h);
  double* row = out.data() + ((b * p.heads + h) * p.q_len + q) * p.value_dim;
  std::fill(row, row + p.value_dim, 0.0);
  if (keys.empty()) return;
  std::vector<double> s(keys.size());
  double m = -INFINITY;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    double dot = 0;
    for (std::int64_t d = 0; d < p.head_dim; ++d) dot += q_elem(p, in, b, h, q, d) * k_elem(p, in, b, kvh, keys[i], d);
    s[i] = p.scale * dot;
    m = std::max(m, s[i]);
  }
  double z = 0;
  for (double& x : s) z += (x = std::exp(x - m));
  for (std::size_t i = 0; i < keys.size(); ++i)
    for (std::int64_t c = 0; c < p.value_dim; ++c) row[c] += s[i] / z * v_elem(p, in, b, kvh, keys[i], c);
}

// Whether the gap between the kept and the dropped scores (sorted descending) is too small to call.
inline bool near_tie(const std::vector<double>& sorted_desc, std::size_t kept) {
  if (kept == 0 || kept >= sorted_desc.size()) return false;
  const double a = sorted_desc[kept - 1], b = sorted_desc[kept];
  return a - b < 1e-4 * (1.0 + std::abs(a));
}

// Top-k attention: per query, all allowed keys scored, the k best kept (by sorting), softmax over them.
inline OracleResult topk_oracle(const Problem& p, const Inputs& in, std::int64_t k) {
  OracleResult r;
  r.out.assign(static_cast<std::size_t>(p.batch * p.heads * p.q_len * p.value_dim), 0.0);
  r.ambiguous.assign(static_cast<std::size_t>(p.batch * p.heads * p.q_len), false);
  for (std::int64_t b = 0; b < p.batch; ++b)
    for (std::int64_t h = 0; h < p.heads; ++h)
      for (std::int64_t q = 0; q < p.q_len; ++q) {
        std::vector<std::pair<double, std::int64_t>> scored;  // (−score, key): sorting ascending = best first
        for (std::int64_t key = 0; key < p.kv_len; ++key) {
          if (!p.mask->allowed(b, h, q, key)) continue;
          double dot = 0;
          for (std::int64_t d = 0; d < p.head_dim; ++d)
            dot += q_elem(p, in, b, h, q, d) * k_elem(p, in, b, p.kv_head_of(h), key, d);
          scored.push_back({-p.scale * dot, key});
        }
        std::sort(scored.begin(), scored.end());
        const std::size_t kept = std::min<std::size_t>(static_cast<std::size_t>(k), scored.size());
        std::vector<double> desc;
        for (const auto& s : scored) desc.push_back(-s.first);
        r.ambiguous[static_cast<std::size_t>((b * p.heads + h) * p.q_len + q)] = near_tie(desc, kept);
        std::vector<std::int64_t> keys;
        for (std::size_t i = 0; i < kept; ++i) keys.push_back(scored[i].second);
        attend_exactly(p, in, b, h, q, keys, r.out);
      }
  return r;
}

enum class BlockScore { mean_key, quest_bound };

struct BlockRule {
  std::int64_t block = 16;
  std::int64_t topk = 2;
  BlockScore score = BlockScore::mean_key;
  bool own_in_budget = false;      // MoBA: the own block is one of the topk
  bool own_without_causal = true;  // without a causal mask, the block at the query's position is forced
};

// Block selection: blocks of `block` keys, scored per query by q·mean(keys) or by Quest's bound
// Σ_d max(q_d·min_d, q_d·max_d); under causal the candidates are the blocks wholly before the query's
// own block, which is always attended and causally cut. Attends exactly to the chosen blocks' keys.
inline OracleResult block_oracle(const Problem& p, const Inputs& in, const BlockRule& rule) {
  OracleResult r;
  r.out.assign(static_cast<std::size_t>(p.batch * p.heads * p.q_len * p.value_dim), 0.0);
  r.ambiguous.assign(static_cast<std::size_t>(p.batch * p.heads * p.q_len), false);
  const std::int64_t nb = (p.kv_len + rule.block - 1) / rule.block;
  for (std::int64_t b = 0; b < p.batch; ++b)
    for (std::int64_t h = 0; h < p.heads; ++h) {
      const std::int64_t kvh = p.kv_head_of(h);
      for (std::int64_t q = 0; q < p.q_len; ++q) {
        const std::int64_t pos = q + p.kv_len - p.q_len;
        const bool causal = p.mask->is_causal();
        if (causal && pos < 0) continue;  // sees no key: zeros
        std::int64_t own = -1;
        if (causal || (rule.own_without_causal && pos >= 0 && pos < p.kv_len)) own = pos / rule.block;
        std::vector<std::pair<double, std::int64_t>> scored;  // (−score, block)
        for (std::int64_t blk = 0; blk < nb; ++blk) {
          if (blk == own || (causal && blk > own)) continue;
          const std::int64_t k0 = blk * rule.block, k1 = std::min(k0 + rule.block, p.kv_len);
          double s = 0;
          for (std::int64_t d = 0; d < p.head_dim; ++d) {
            const double qd = q_elem(p, in, b, h, q, d);
            double sum = 0, lo = INFINITY, hi = -INFINITY;
            for (std::int64_t key = k0; key < k1; ++key) {
              const double x = k_elem(p, in, b, kvh, key, d);
              sum += x;
              lo = std::min(lo, x);
              hi = std::max(hi, x);
            }
            s += rule.score == BlockScore::mean_key ? qd * sum / static_cast<double>(k1 - k0)
                                                    : std::max(qd * lo, qd * hi);
          }
          scored.push_back({-p.scale * s, blk});
        }
        std::sort(scored.begin(), scored.end());
        const std::int64_t budget = rule.topk - (rule.own_in_budget && own >= 0 ? 1 : 0);
        const std::size_t kept =
            std::min<std::size_t>(static_cast<std::size_t>(std::max<std::int64_t>(budget, 0)), scored.size());
        std::vector<double> desc;
        for (const auto& s : scored) desc.push_back(-s.first);
        r.ambiguous[static_cast<std::size_t>((b * p.heads + h) * p.q_len + q)] = near_tie(desc, kept);

        std::vector<std::int64_t> blocks;
        for (std::size_t i = 0; i < kept; ++i) blocks.push_back(scored[i].second);
        if (own >= 0) blocks.push_back(own);
        std::sort(blocks.begin(), blocks.end());
        std::vector<std::int64_t> keys;
        for (std::int64_t blk : blocks)
          for (std::int64_t key = blk * rule.block; key < std::min((blk + 1) * rule.block, p.kv_len); ++key)
            if (p.mask->allowed(b, h, q, key)) keys.push_back(key);
        attend_exactly(p, in, b, h, q, keys, r.out);
      }
    }
  return r;
}

// Relative L2 error of `out` against the oracle over the rows that are not near-ties; `compared`
// says how many rows entered.
inline double relative_l2_unambiguous(const Problem& p, const Tensor& out, const OracleResult& ref,
                                      std::int64_t* compared = nullptr) {
  double num = 0, den = 0;
  std::int64_t rows = 0;
  for (std::int64_t row = 0; row < p.batch * p.heads * p.q_len; ++row) {
    if (ref.ambiguous[static_cast<std::size_t>(row)]) continue;
    ++rows;
    for (std::int64_t c = 0; c < p.value_dim; ++c) {
      const double x = out.get(row * p.value_dim + c), y = ref.out[static_cast<std::size_t>(row * p.value_dim + c)];
      num += (x - y) * (x - y);
      den += y * y;
    }
  }
  if (compared) *compared = rows;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline std::int64_t count_ambiguous(const OracleResult& r) {
  return static_cast<std::int64_t>(std::count(r.ambiguous.begin(), r.ambiguous.end(), true));
}

// ---- Checks shared by the method tests ----

// The shapes the dynamic-sparse tests sweep.
inline const std::vector<Shape>& dynamic_sparse_shapes() {
  static const std::vector<Shape> all = {
      {1, 1, 1, 1, 1, 64, 64},      // a single query and key
      {2, 2, 2, 7, 7, 40, 40},      // odd length, batch 2
      {1, 8, 2, 100, 100, 64, 64},  // GQA
      {1, 4, 1, 257, 257, 32, 48},  // MQA, value dim differs, ragged last block
      {1, 2, 2, 37, 100, 72, 72},   // Lq < Lk (bottom-right aligned)
      {1, 2, 1, 100, 37, 64, 40},   // Lq > Lk: under causal the first 63 rows see nothing
      {1, 2, 2, 5, 300, 64, 64},    // decode-like: few queries, long cache
  };
  return all;
}

// Rows compared against a selection oracle and rows skipped as near-ties, over a sweep.
struct NearTieTally {
  std::int64_t compared = 0, ambiguous = 0;
};

// `out` equals the selection oracle on the rows that are not near-ties (fp32 inputs).
inline void check_matches_oracle(const Problem& p, const Tensor& out, const OracleResult& ref, NearTieTally& tally) {
  std::int64_t compared = 0;
  const double err = relative_l2_unambiguous(p, out, ref, &compared);
  INFO("relative L2 error " << err << " over " << compared << " rows");
  CHECK(err <= 1e-5);
  tally.compared += compared;
  tally.ambiguous += count_ambiguous(ref);
}

// At most 1% of the rows of a sweep were skipped as near-ties.
inline void check_near_ties_rare(const NearTieTally& tally) {
  INFO(tally.ambiguous << " near-tie rows skipped of " << tally.compared + tally.ambiguous);
  CHECK(tally.ambiguous * 100 <= tally.compared + tally.ambiguous);
}

// The refusals these methods share: a mask other than full or causal, fp64 inputs (f64_problem), and
// a CUDA device; p must be supported on the CPU.
inline void check_shared_refusals(const Method& m, const Problem& p, const Params& params, const Problem& f64_problem) {
  Problem windowed = p;
  windowed.mask = std::make_shared<const NarrowWindowMask>(p.mask_shape());
  const Support no_mask = m.supports(windowed, params, Device{});
  CHECK_FALSE(no_mask);
  CHECK_THAT(no_mask.reason, Catch::Contains("full and causal masks only"));
  const Support no_f64 = m.supports(f64_problem, params, Device{});
  CHECK_FALSE(no_f64);
  CHECK_THAT(no_f64.reason, Catch::Contains("fp64"));
  CHECK_FALSE(m.supports(p, params, Device{Device::Kind::cuda, 0}));
}

// A block-selection method under test: its name, its two parameters, and its rule in block_oracle.
struct BlockMethodUnderTest {
  std::string name, block_param, topk_param;
  BlockScore score = BlockScore::mean_key;
  bool own_in_budget = false;
  bool own_without_causal = true;

  BlockRule rule(std::int64_t block, std::int64_t topk) const {
    BlockRule r;
    r.block = block;
    r.topk = topk;
    r.score = score;
    r.own_in_budget = own_in_budget;
    r.own_without_causal = own_without_causal;
    return r;
  }
  json params(std::int64_t block, std::int64_t topk) const { return {{block_param, block}, {topk_param, topk}}; }
};

// moba (kernels/cpu/moba.cpp): blocks scored by q·mean(keys), the own block one of the topk and, without a
// causal mask, forced. Its CPU tests, its CUDA tests and the emulated CUDA path all check against this rule.
inline const BlockMethodUnderTest& moba_under_test() {
  static const BlockMethodUnderTest m{"moba",
                                      "block",
                                      "topk",
                                      BlockScore::mean_key,
                                      /*own_in_budget=*/true,
                                      /*own_without_causal=*/true};
  return m;
}

// With more blocks chosen than there are, the method is exact attention, over the shapes and blocks
// of 1, 7 and 64 keys.
inline void check_every_block_is_exact(const BlockMethodUnderTest& m, const std::string& mask, Dtype dtype) {
  std::uint64_t seed = 300;
  for (const Shape& s : dynamic_sparse_shapes())
    for (const std::int64_t block : {1, 7, 64}) {
      const Problem p = make_problem(s, mask, dtype);
      INFO(p.describe() << " block " << block);
      const Inputs in = datasets::gaussian_inputs(p, seed++);
      const Tensor ref = run_method("reference", p, in);
      const Tensor out = run_method(m.name, p, in, m.params(block, 1 << 20));
      check_matches_reference(out, ref, dtype);
    }
}

// With a few blocks chosen, the method equals its float64 definition over the shapes, for each
// (block, topk); near-tie rows are skipped and must be rare.
inline void check_few_blocks_match_oracle(const BlockMethodUnderTest& m, const std::string& mask,
                                          const std::vector<std::pair<std::int64_t, std::int64_t>>& settings) {
  std::uint64_t seed = 400;
  NearTieTally tally;
  for (const Shape& s : dynamic_sparse_shapes())
    for (const auto& [block, topk] : settings) {
      // Refused: without a causal mask and a forced block there is nothing to attend to.
      if (topk == 0 && mask == "full" && !m.own_without_causal) continue;
      const Problem p = make_problem(s, mask);
      INFO(p.describe() << " " << m.block_param << " " << block << " " << m.topk_param << " " << topk);
      const Inputs in = datasets::gaussian_inputs(p, seed++);
      const OracleResult ref = block_oracle(p, in, m.rule(block, topk));
      const Tensor out = run_method(m.name, p, in, m.params(block, topk));
      check_matches_oracle(p, out, ref, tally);
    }
  check_near_ties_rare(tally);
}

// In bf16 the method follows its definition on the rounded inputs (blocks of 16, topk 3).
inline void check_bf16_matches_oracle(const BlockMethodUnderTest& m, const std::string& mask) {
  const Problem p = make_problem({1, 4, 2, 200, 200, 64, 64}, mask, Dtype::bf16);
  const Inputs in = datasets::gaussian_inputs(p, 17);
  const OracleResult ref = block_oracle(p, in, m.rule(16, 3));
  const Tensor out = run_method(m.name, p, in, m.params(16, 3));
  REQUIRE(out.dtype() == Dtype::bf16);
  CHECK(relative_l2_unambiguous(p, out, ref) <= 1e-2);
}

// Causal, blocks of 8, `topk` such that no block is chosen by score: query q attends to keys
// [8·⌊q/8⌋, q] only.
inline void check_own_block_only(const BlockMethodUnderTest& m, std::int64_t topk) {
  const Problem p = make_problem({1, 2, 2, 40, 40, 32, 32}, "causal");
  const Inputs in = datasets::gaussian_inputs(p, 21);
  const Tensor out = run_method(m.name, p, in, m.params(8, topk));
  OracleResult local;
  local.out.assign(static_cast<std::size_t>(out.numel()), 0.0);
  for (std::int64_t h = 0; h < 2; ++h)
    for (std::int64_t q = 0; q < 40; ++q) {
      std::vector<std::int64_t> keys;
      for (std::int64_t k = q / 8 * 8; k <= q; ++k) keys.push_back(k);
      attend_exactly(p, in, 0, h, q, keys, local.out);
    }
  local.ambiguous.assign(80, false);
  CHECK(relative_l2_unambiguous(p, out, local) <= 1e-5);
}

}  // namespace attnbench::testing
