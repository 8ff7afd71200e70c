// Method "quest": query-aware page selection — each query attends to the pages whose per-channel
// min/max bound on q·k is highest, plus its current page.
#include <algorithm>
#include <vector>

#include "attnbench/method.hpp"
#include "kernels/cpu/block_select_core.hpp"

namespace attnbench {
namespace {

// Quest (Tang et al. 2024): keys in pages of `page` tokens, each summarised by its per-channel min and
// max; a query rates a page by the upper bound Σ_d max(q_d·min_d, q_d·max_d) ≥ max_k q·k and attends to
// the `pages` best pages. Under a causal mask the candidates are the pages wholly in the past and the
// current page (the one being filled in decoding, causally masked) is always attended on top of them;
// without one every page competes and none is forced.
//
// FLOPs, bytes, plan and the shared refusals come from BlockSelectMethod over Quest's gate (QuestGate,
// kernels/cpu/block_select_core.hpp).
class Quest final : public kernels::BlockSelectMethod<kernels::QuestGate> {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "quest";
    m.family = Family::sparse_dynamic;
    m.summary =
        "per query, the top pages by the min/max upper bound on q·k, plus the current page; exact softmax over them";
    m.reference = "Tang et al., Quest: Query-Aware Sparsity for Efficient Long-Context LLM Inference (2024)";
    m.params = {ParamSpec::integer("page", 16, 1, 1 << 20, "keys per page, each summarised by per-channel min and max"),
                ParamSpec::integer("pages", 64, 0, 1 << 20,
                                   "pages chosen per query by bound (the current page comes on top under causal)")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = BlockSelectMethod::supports(p, params, d); !s) return s;
    if (!p.causal() && params.integer("pages") == 0)
      return Support::no(
          "quest with pages = 0 attends to nothing without a causal mask (no current page); use pages >= 1");
    return Support::yes();
  }

 protected:
  kernels::BlockSelection selection(const Params& params) const override {
    return kernels::block_selection(params.integer("page"), params.integer("pages"), /*own_in_budget=*/false,
                                    /*own_without_causal=*/false);
  }
};

ATTNBENCH_REGISTER_METHOD(Quest);

}  // namespace
}  // namespace attnbench
