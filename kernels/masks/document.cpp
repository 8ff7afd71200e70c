// Mask "document": packed documents (varlen) — a query sees only keys of its own document, all of
// them or (causal) those at or before it. Lengths are given, or a seeded split into `documents` parts.
#include <algorithm>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "attnbench/rng.hpp"
#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {
namespace {

std::vector<ParamSpec> document_params() {
  return {ParamSpec::choice("doc_lens", "", {},
                            "comma-separated document lengths, e.g. \"300,200,524\"; tokens past "
                            "their sum form one last document; empty: a seeded split"),
          ParamSpec::integer("documents", 4, 1, std::int64_t{1} << 24,
                             "documents of the seeded split (used when doc_lens is empty)"),
          ParamSpec::integer("seed", 0, 0, std::int64_t{1} << 40, "seed of the split points"),
          ParamSpec::boolean("causal", true, "causal within each document (false: full within each document)")};
}

// Start positions of the documents over k_len tokens, ascending, the first 0.
std::vector<std::int64_t> document_starts(const Params& p, std::int64_t k_len) {
  std::vector<std::int64_t> starts{0};
  const std::string lens = p.string("doc_lens");
  if (!lens.empty()) {
    std::stringstream in(lens);
    std::string item;
    std::int64_t end = 0;
    while (std::getline(in, item, ',')) {
      std::size_t used = 0;
      std::int64_t len = 0;
      try {
        len = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != item.size() || len <= 0)
        throw std::invalid_argument("mask 'document': doc_lens \"" + lens +
                                    "\" must be positive integers separated by commas");
      end += len;
      if (end >= k_len) break;
      starts.push_back(end);
    }
    return starts;
  }
  const std::int64_t n = p.integer("documents");
  if (n > k_len)
    throw std::invalid_argument("mask 'document': " + std::to_string(n) + " documents do not fit in " +
                                std::to_string(k_len) + " tokens");
  // n − 1 distinct cut points in [1, k_len − 1], by Floyd's sampling (exact, O(n log n)).
  Rng rng(derive_seed(static_cast<std::uint64_t>(p.integer("seed")), "document-split"));
  std::set<std::int64_t> cuts;
  const std::int64_t range = k_len - 1;
  for (std::int64_t j = range - (n - 1); j < range; ++j) {
    const auto t = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(j + 1)));
    if (!cuts.insert(t + 1).second) cuts.insert(j + 1);
  }
  starts.insert(starts.end(), cuts.begin(), cuts.end());
  return starts;
}

// With doc(x) the document holding position x: allowed when doc(pos) == doc(k) (and k <= pos if causal).
class DocumentMask final : public Mask {
 public:
  DocumentMask(Params p, MaskShape s)
      : Mask("document", std::move(p), s),
        starts_(document_starts(params(), s.k_len)),
        causal_(params().boolean("causal")) {}

  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    return pos >= 0 && doc(pos) == doc(k) && (!causal_ || k <= pos);
  }

  // Documents are contiguous, so a rectangle meets a contiguous run of common documents [lo, hi]. In
  // every common document after the first, its first key is at or before its first position in the
  // tile, so only the first can lack an allowed pair; full needs one document and (causal) the band.
  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    return over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
      const std::int64_t dp0 = doc(p0), dp1 = doc(p1), dk0 = doc(k0), dk1 = doc(k1 - 1);
      const std::int64_t lo = std::max(dp0, dk0), hi = std::min(dp1, dk1);
      if (lo > hi) return TileState::empty;
      if (dp0 == dp1 && dk0 == dk1 && dp0 == dk0)
        return causal_ ? band_state(p0, p1, k0, k1, 0, std::int64_t{1} << 62) : TileState::full;
      if (!causal_ || lo < hi) return TileState::partial;
      const std::int64_t end = lo + 1 < static_cast<std::int64_t>(starts_.size()) ? starts_[lo + 1] : shape().k_len;
      const bool any = std::max(k0, starts_[lo]) <= std::min(p1, end - 1);
      return any ? TileState::partial : TileState::empty;
    });
  }

 private:
  std::int64_t doc(std::int64_t x) const {
    return static_cast<std::int64_t>(std::upper_bound(starts_.begin(), starts_.end(), x) - starts_.begin()) - 1;
  }
  std::vector<std::int64_t> starts_;
  bool causal_;
};

const MaskRegistration registration{MaskKind{
    "document", "packed documents (varlen): a query sees the keys of its own document, causal or full within it",
    document_params(), [](const Params& p, const MaskShape& s) { return std::make_shared<const DocumentMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
