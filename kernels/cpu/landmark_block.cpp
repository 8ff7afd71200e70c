// Method "landmark_block": Landmark-Attention-style block retrieval at inference — each query retrieves
// the top-k blocks by q·(block representative) and attends exactly to them plus its local block.
#include "attnbench/method.hpp"
#include "kernels/cpu/block_select_core.hpp"

namespace attnbench {
namespace {

// Landmark Attention (Mohtashami & Jaggi 2023) trains a landmark token per block whose key stands for
// the block; at inference each query retrieves the `topk` blocks whose landmark it scores highest and
// attends to their tokens, besides its local context. The harness has no trained model, so the block's
// representative key is the mean of its keys. Under a causal mask the candidates are the blocks wholly
// in the past and the local block (the one holding the query, causally masked) comes on top of the
// topk; without one every other block competes and the block at the query's aligned position is local.
//
// FLOPs (D adds per key for the block means, 2·D per block gated), bytes, plan and refusals come
// from BlockSelectMethod over the mean-key gate.
class LandmarkBlock final : public kernels::BlockSelectMethod<kernels::MeanKeyGate> {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "landmark_block";
    m.family = Family::sparse_dynamic;
    m.summary =
        "per query, retrieve the top-k blocks by q·(mean key, standing in for a trained landmark) plus the local "
        "block; exact softmax over them";
    m.reference =
        "Mohtashami & Jaggi, Landmark Attention: Random-Access Infinite Context Length for Transformers (2023)";
    m.params = {ParamSpec::integer("block", 64, 1, 1 << 20, "keys per block (one landmark per block in the paper)"),
                ParamSpec::integer("topk", 4, 0, 1 << 20, "blocks retrieved per query, besides its local block")};
    m.backends = {"cpu"};
    return m;
  }

 protected:
  kernels::BlockSelection selection(const Params& params) const override {
    return kernels::block_selection(params.integer("block"), params.integer("topk"), /*own_in_budget=*/false,
                                    /*own_without_causal=*/true);
  }
};

ATTNBENCH_REGISTER_METHOD(LandmarkBlock);

}  // namespace
}  // namespace attnbench
