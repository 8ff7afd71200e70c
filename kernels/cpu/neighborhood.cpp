// Method "neighborhood": NATTEN's 1-D (dilated) neighborhood attention computed exactly by flash_core over
// the tiles the pattern touches.
#include "kernels/cpu/sparse_static.hpp"

namespace attnbench {
namespace {

class Neighborhood final : public kernels::StaticSparseMethod {
 protected:
  Pattern pattern() const override {
    return {
        "neighborhood",
        "exact 1-D neighborhood attention: `window` nearest keys of the query's dilation group, shifted at the edges",
        "Hassani et al., Neighborhood Attention Transformer (2023); Hassani & Shi, Dilated Neighborhood Attention "
        "Transformer (2022)",
        masks::neighborhood_params()};
  }
  Support check(const Problem& p, const Params& params) const override {
    const std::int64_t window = params.integer("window"), dilation = params.integer("dilation");
    if (window % 2 == 0)
      return Support::no("neighborhood window (" + std::to_string(window) +
                         ") must be odd, so that the neighborhood is centred on the query");
    if (window * dilation > p.kv_len)
      return Support::no("window (" + std::to_string(window) + ") × dilation (" + std::to_string(dilation) +
                         ") must not exceed kv_len (" + std::to_string(p.kv_len) +
                         "), else a dilation group has fewer than window members");
    // NATTEN's causal neighborhood is a different window (the `window` group members ending at the
    // query), not this one cut in half, so a causal problem is refused rather than intersected.
    if (p.mask->is_causal())
      return Support::no(
          "neighborhood is NATTEN's non-causal pattern; its causal variant is not implemented — use "
          "sliding_window (mode causal) for causal local attention");
    return Support::yes();
  }
  std::pair<std::int64_t, std::int64_t> tile_sizes(const Params& params) const override {
    return {64, kernels::key_tile_for_span(params.integer("window") * params.integer("dilation"))};
  }
};

ATTNBENCH_REGISTER_METHOD(Neighborhood);

}  // namespace
}  // namespace attnbench
