// Method "power": PowerAttention's static pattern (power-of-two block distances, window and sink blocks,
// causal) computed exactly by flash_core over the tiles the pattern touches.
#include "kernels/cpu/sparse_static.hpp"

namespace attnbench {
namespace {

class Power final : public kernels::StaticSparseMethod {
 protected:
  Pattern pattern() const override {
    return {
        "power", "exact causal attention over key blocks at power-of-two block distances plus window and sink blocks",
        "Chen et al., PowerAttention: Exponentially Scaling of Receptive Fields for Effective Sparse Attention (2025)",
        masks::power_params()};
  }
  bool pattern_is_causal(const Params&) const override { return true; }
  Support check(const Problem& p, const Params& params) const override {
    const std::int64_t block = params.integer("block");
    if (block >= p.kv_len)
      return Support::no("power block (" + std::to_string(block) + ") must be smaller than kv_len (" +
                         std::to_string(p.kv_len) + "); one block is plain causal attention — use flash");
    return Support::yes();
  }
  std::pair<std::int64_t, std::int64_t> tile_sizes(const Params& params) const override {
    return kernels::tiles_for_blocks(params.integer("block"));
  }
};

ATTNBENCH_REGISTER_METHOD(Power);

}  // namespace
}  // namespace attnbench
