// Method "star": Star Attention's two phases as one mask (blockwise context with an anchor block, then
// global query attention), computed exactly by flash_core over the tiles the pattern touches.
#include "kernels/cpu/sparse_static.hpp"

namespace attnbench {
namespace {

class Star final : public kernels::StaticSparseMethod {
 protected:
  Pattern pattern() const override {
    return {
        "star",
        "exact causal attention: context blocks see themselves and the anchor block, the last query_len tokens see all",
        "Acharya, Jia, Ginsburg, Star Attention: Efficient LLM Inference over Long Sequences (2024)",
        masks::star_params()};
  }
  bool pattern_is_causal(const Params&) const override { return true; }
  Support check(const Problem& p, const Params& params) const override {
    const std::int64_t query_len = params.integer("query_len");
    if (query_len >= p.kv_len)
      return Support::no("star query_len (" + std::to_string(query_len) + ") must be smaller than kv_len (" +
                         std::to_string(p.kv_len) + "), else there is no context to split into blocks");
    return Support::yes();
  }
  std::pair<std::int64_t, std::int64_t> tile_sizes(const Params& params) const override {
    return kernels::tiles_for_blocks(params.integer("block"));
  }
};

ATTNBENCH_REGISTER_METHOD(Star);

}  // namespace
}  // namespace attnbench
