// Method "bigbird": BigBird's block-sparse attention (global, window and seeded random blocks) computed
// exactly by flash_core over the tiles the pattern touches.
#include "kernels/cpu/sparse_static.hpp"

namespace attnbench {
namespace {

class BigBird final : public kernels::StaticSparseMethod {
 protected:
  Pattern pattern() const override {
    return {"bigbird", "exact attention over BigBird blocks: global + sliding window + random blocks per head",
            "Zaheer et al., Big Bird: Transformers for Longer Sequences (2020)", masks::bigbird_params()};
  }
  Support check(const Problem& p, const Params& params) const override {
    const std::int64_t block = params.integer("block"), window = params.integer("window");
    if (window % 2 == 0)
      return Support::no("bigbird window (" + std::to_string(window) +
                         " blocks) must be odd, centred on the query block");
    const std::int64_t blocks = (p.kv_len + block - 1) / block;
    const std::int64_t needed = params.integer("global") + window + params.integer("random");
    if (needed > blocks)
      return Support::no("bigbird needs global + window + random = " + std::to_string(needed) +
                         " key blocks, but kv_len (" + std::to_string(p.kv_len) + ") has " + std::to_string(blocks) +
                         " blocks of " + std::to_string(block) + "; use a smaller block or fewer blocks");
    return Support::yes();
  }
  std::pair<std::int64_t, std::int64_t> tile_sizes(const Params& params) const override {
    return kernels::tiles_for_blocks(params.integer("block"));
  }
};

ATTNBENCH_REGISTER_METHOD(BigBird);

}  // namespace
}  // namespace attnbench
