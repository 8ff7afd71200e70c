// Method "moba": Mixture of Block Attention — each query attends to the key blocks whose mean key it
// scores highest, always including its own block.
#include "attnbench/method.hpp"
#include "kernels/cpu/block_select_core.hpp"

namespace attnbench {
namespace {

// MoBA's gate (Lu et al. 2025): blocks of `block` keys, each represented by the mean of its keys; the
// gate of query q for block i is q·mean_i. Under a causal mask only blocks wholly in the past compete
// and the query's own block is always chosen and causally masked. As in MoBA's reference code (the own
// block's gate is set to +inf before torch.topk), the own block counts towards `topk`: a query attends
// to its own block plus the topk − 1 best past blocks. Without a causal mask (not in the paper) every
// block competes and the block holding the query's aligned position is forced in the same way.
//
// FLOPs (D adds per key for the block means, 2·D per block gated), bytes, plan and refusals come
// from BlockSelectMethod over the mean-key gate.
class Moba final : public kernels::BlockSelectMethod<kernels::MeanKeyGate> {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "moba";
    m.family = Family::sparse_dynamic;
    m.summary =
        "per query, the top-k key blocks by q·mean(block keys), own block always included; exact softmax over them";
    m.reference = "Lu et al., MoBA: Mixture of Block Attention for Long-Context LLMs (2025)";
    m.params = {ParamSpec::integer("block", 512, 1, 1 << 20, "keys per block (MoBA's chunk size)"),
                ParamSpec::integer("topk", 3, 1, 1 << 20, "blocks each query attends to, its own block included")};
    m.backends = {"cpu"};
    return m;
  }

 protected:
  kernels::BlockSelection selection(const Params& params) const override {
    return kernels::block_selection(params.integer("block"), params.integer("topk"), /*own_in_budget=*/true,
                                    /*own_without_causal=*/true);
  }
};

ATTNBENCH_REGISTER_METHOD(Moba);

}  // namespace
}  // namespace attnbench
