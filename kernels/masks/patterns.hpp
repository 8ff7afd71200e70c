// The static sparse attention patterns (sliding_window, neighborhood, sink_window, bigbird, longformer,
// power, star): their declared parameters, shared by each mask kind and the method of the same name, and
// the small exact tile arithmetic their closed-form Mask::tile() overrides are built from.
//
// Every pattern is a predicate over absolute positions in one sequence of kv_len tokens: key k sits at
// k, query q at pos = q + (kv_len - q_len) (bottom-right aligned). A query with pos < 0 (q_len > kv_len)
// has no place in the sequence and sees no key.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "attnbench/mask.hpp"
#include "attnbench/params.hpp"

namespace attnbench::masks {

// Parameter declarations, one function per pattern (functions, not globals, so that a method's info()
// can use them during static initialisation whatever the order the files are linked in).
std::vector<ParamSpec> sliding_window_params();
std::vector<ParamSpec> neighborhood_params();
std::vector<ParamSpec> sink_window_params();
std::vector<ParamSpec> bigbird_params();
std::vector<ParamSpec> longformer_params();
std::vector<ParamSpec> power_params();
std::vector<ParamSpec> star_params();

// |[a0, a1) ∩ [b0, b1)|
inline std::int64_t overlap(std::int64_t a0, std::int64_t a1, std::int64_t b0, std::int64_t b1) {
  return std::max<std::int64_t>(0, std::min(a1, b1) - std::max(a0, b0));
}

// floor(a / b) for b > 0 and any sign of a.
inline std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The state of {lo <= d <= hi} over all d = pos - k with pos in [p0, p1] and k in [k0, k1): the
// differences a rectangle takes are every integer in [p0 - (k1 - 1), p1 - k0], so one interval test decides.
inline TileState band_state(std::int64_t p0, std::int64_t p1, std::int64_t k0, std::int64_t k1, std::int64_t lo,
                            std::int64_t hi) {
  const std::int64_t dmin = p0 - (k1 - 1), dmax = p1 - k0;
  if (dmax < lo || dmin > hi) return TileState::empty;
  if (dmin >= lo && dmax <= hi) return TileState::full;
  return TileState::partial;
}

// Folds rows (or groups of rows) into a tile state from how many of the tile's keys each allows.
class RowFold {
 public:
  // Returns false once the tile is known to be partial, so callers can stop early.
  bool add(std::int64_t allowed, std::int64_t width) {
    any_ |= allowed > 0;
    all_ &= allowed == width;
    return !(any_ && !all_);
  }
  // Adds a sub-tile whose state is already known.
  bool add(TileState s) { return s == TileState::empty ? add(0, 1) : s == TileState::full ? add(1, 1) : add(1, 2); }
  TileState state() const { return !any_ ? TileState::empty : all_ ? TileState::full : TileState::partial; }

 private:
  bool any_ = false, all_ = true;
};

// Applies `state(p0, p1)` to the rows of [p0, p1] that have a position (pos >= 0) and folds in the rows
// that have none (they see nothing): a tile with such rows is never full.
template <class F>
TileState over_positioned_rows(std::int64_t p0, std::int64_t p1, F&& state) {
  if (p1 < 0) return TileState::empty;
  const TileState s = state(std::max<std::int64_t>(p0, 0), p1);
  return (p0 < 0 && s == TileState::full) ? TileState::partial : s;
}

}  // namespace attnbench::masks
