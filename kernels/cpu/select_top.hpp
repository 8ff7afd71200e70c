// Selection of the k highest scores, ties to the lower index: the rule of topk (over keys) and of the
// block-selection methods (over blocks). Branch-light: a bisection threshold by vector counts, then one
// pass.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>

#include "kernels/cpu/simd_tiles.hpp"

namespace attnbench::kernels {

// How many of x[0, n) are >= t (NaN never is): vector compares, the counts summed in the lanes.
inline std::int64_t count_at_least(const float* x, std::int64_t n, float t) {
  constexpr std::int64_t L = simd::kLanes;
  const simd::vfloat tv = simd::splat(t);
  simd::vint lanes{};
  std::int64_t i = 0;
  for (; i + L <= n; i += L) lanes -= simd::load(x + i) >= tv;  // a true lane is −1
  std::int64_t count = 0;
  for (std::int64_t l = 0; l < L; ++l) count += lanes[l];
  for (; i < n; ++i) count += x[i] >= t ? 1 : 0;
  return count;
}

// The kept-th largest of score[0, n) for 0 < kept < n, by bisection of the value range: each step
// counts the scores at or above the midpoint (one vector compare per kLanes scores) and keeps the half
// holding the kept-th, until at most kFew scores lie between the bounds; those are copied to `values`
// and the answer is selected among them. A handful of branch-free passes where selection over all n
// scores (nth_element) mispredicts about every other comparison. Scores of +inf or NaN, and value ranges
// that do not shrink in kMaxSteps, fall back to that selection (NaN then ranks with −inf).
inline float kth_largest(const float* score, std::int64_t n, std::int64_t kept, float* values) {
  constexpr std::int64_t kFew = 32, kMaxSteps = 40;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const auto by_selection = [&](std::int64_t m, std::int64_t rank) {  // the rank-th largest of values[0, m)
    std::nth_element(values, values + (rank - 1), values + m, std::greater<float>());
    return values[rank - 1];
  };
  // One vector pass: the least score above −inf, the greatest score, how many are above −inf, and
  // whether any is +inf or NaN.
  constexpr std::int64_t L = simd::kLanes;
  simd::vfloat vlo = simd::splat(kInf), vhi = simd::splat(-kInf);
  simd::vint vunordered{}, vfinite{};
  std::int64_t j0 = 0;
  for (; j0 + L <= n; j0 += L) {
    const simd::vfloat x = simd::load(score + j0);
    const simd::vint finite = x > simd::splat(-kInf);
    vunordered |= ~(x < simd::splat(kInf));
    vfinite -= finite;  // a true lane is −1
    vlo = simd::vmin(vlo, finite ? x : simd::splat(kInf));
    vhi = simd::vmax(vhi, x);
  }
  float lo = kInf, hi = -kInf;
  bool unordered = false;
  std::int64_t c_lo = 0;
  for (std::int64_t l = 0; l < L; ++l) {
    unordered |= vunordered[l] != 0;
    c_lo += vfinite[l];
    lo = std::min(lo, vlo[l]);
    hi = std::max(hi, vhi[l]);
  }
  for (std::int64_t j = j0; j < n; ++j) {
    const float x = score[j];
    unordered |= !(x < kInf);
    c_lo += x > -kInf ? 1 : 0;
    if (x > -kInf) lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  if (unordered) {
    for (std::int64_t j = 0; j < n; ++j) values[j] = score[j] == score[j] ? score[j] : -kInf;
    return by_selection(n, kept);
  }
  if (lo == kInf) return -kInf;  // every score is −inf
  // Invariant: at least kept scores are >= lo, fewer than kept are >= hi (c_lo and c_hi of them; with
  // neither +inf nor NaN, the scores >= lo are those above −inf, counted above).
  std::int64_t c_hi = count_at_least(score, n, hi);
  if (c_lo < kept) return -kInf;  // the kept-th is one of the −inf scores
  if (c_hi >= kept) return hi;
  for (std::int64_t step = 0; step < kMaxSteps && c_lo - c_hi > kFew; ++step) {
    const float mid = lo * 0.5f + hi * 0.5f;
    if (!(mid > lo && mid < hi)) break;
    const std::int64_t c = count_at_least(score, n, mid);
    if (c >= kept) {
      lo = mid;
      c_lo = c;
    } else {
      hi = mid;
      c_hi = c;
    }
  }
  // The few scores in [lo, hi), skipping vectors with none.
  std::int64_t m = 0;
  const simd::vfloat lo_v = simd::splat(lo), hi_v = simd::splat(hi);
  for (std::int64_t j = 0; j < n; j += L) {
    if (j + L <= n) {
      const simd::vfloat x = simd::load(score + j);
      if (!simd::any_lane((x >= lo_v) & (x < hi_v))) continue;
    }
    for (std::int64_t i = j; i < std::min(j + L, n); ++i) {
      values[m] = score[i];
      m += score[i] >= lo && score[i] < hi ? 1 : 0;
    }
  }
  return by_selection(m, kept - c_hi);
}

// The `kept` highest of score[0, n), ties going to the lower index, as ascending indices in `order` (K
// and V are then streamed forward; `order` has room for kept + 1: the pass writes one past the last
// index it takes); `values` (n) is scratch. Used over keys by topk and over blocks by this family: the
// kept-th largest score (kth_largest), then one pass that takes every index above it and the lowest
// ones equal to it. Returns min(kept, n). With NaN scores (NaN inputs: the output is NaN anyway) the
// set is unspecified but the indices stay distinct and in range, and fewer may be returned.
inline std::int64_t select_top(const float* score, std::int64_t n, std::int64_t kept, float* values,
                               std::int32_t* order) {
  if (kept >= n) {
    std::iota(order, order + n, 0);
    return n;
  }
  if (kept <= 0) return 0;
  const float threshold = kth_largest(score, n, kept, values);
  // Above the threshold: at least the next float up (none above +inf).
  const std::int64_t above =
      threshold == std::numeric_limits<float>::infinity()
          ? 0
          : count_at_least(score, n, std::nextafter(threshold, std::numeric_limits<float>::infinity()));
  // Every index above it and the lowest ones equal to it, without branches on the scores; vectors with
  // nothing at or above the threshold are passed over.
  constexpr std::int64_t L = simd::kLanes;
  const simd::vfloat t = simd::splat(threshold);
  std::int64_t ties = kept - above, m = 0;
  for (std::int64_t j0 = 0; j0 < n; j0 += L) {
    if (j0 + L <= n) {
      if (!simd::any_lane(simd::load(score + j0) >= t)) continue;
    }
    for (std::int64_t j = j0; j < std::min(j0 + L, n); ++j) {
      const bool tie = score[j] == threshold && ties > 0;
      ties -= tie ? 1 : 0;
      order[m] = static_cast<std::int32_t>(j);
      m += score[j] > threshold || tie ? 1 : 0;
    }
  }
  return m;
}

}  // namespace attnbench::kernels
