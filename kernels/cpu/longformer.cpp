// Method "longformer": Longformer's attention (window plus global tokens) computed exactly by flash_core
// over the tiles the pattern touches.
#include "kernels/cpu/sparse_static.hpp"

namespace attnbench {
namespace {

class Longformer final : public kernels::StaticSparseMethod {
 protected:
  Pattern pattern() const override {
    return {"longformer", "exact attention over a sliding window plus the first `global` tokens, attending both ways",
            "Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer (2020)", masks::longformer_params()};
  }
  Support check(const Problem& p, const Params& params) const override {
    const std::int64_t window = params.integer("window"), global = params.integer("global");
    if (window > p.kv_len)
      return Support::no("window (" + std::to_string(window) + ") must not exceed kv_len (" + std::to_string(p.kv_len) +
                         "); a window that long is plain attention — use flash");
    if (global > p.kv_len)
      return Support::no("global (" + std::to_string(global) + ") must not exceed kv_len (" + std::to_string(p.kv_len) +
                         ")");
    return Support::yes();
  }
  std::pair<std::int64_t, std::int64_t> tile_sizes(const Params& params) const override {
    return {64, kernels::key_tile_for_span(params.integer("window") + 1)};
  }
};

ATTNBENCH_REGISTER_METHOD(Longformer);

}  // namespace
}  // namespace attnbench
