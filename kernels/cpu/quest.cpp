// Method "quest": query-aware page selection — each query attends to the pages whose per-channel
// min/max bound on q·k is highest, plus its current page.
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
kernels::BlockSelection selection_of(const Params& params) {
  kernels::BlockSelection s;
  s.block = params.integer("page");
  s.topk = params.integer("pages");
  s.own_in_budget = false;
  s.own_without_causal = false;
  return s;
}

class QuestPlan final : public Plan {
 public:
  QuestPlan(const Problem& p, const kernels::BlockSelection& s)
      : p_(p),
        s_(s),
        page_min_(static_cast<std::size_t>(p.batch * p.kv_heads * s.blocks(p) * p.head_dim)),
        page_max_(page_min_.size()),
        scratch_(kernels::make_block_select_scratch(p, s)) {}

  void run(const Inputs& in, Tensor& out) override {
    if (p_.dtype == Dtype::bf16)
      forward<std::uint16_t>(in, out);
    else
      forward<float>(in, out);
  }

 private:
  template <class T>
  void forward(const Inputs& in, Tensor& out) {
    const std::int64_t nb = s_.blocks(p_), D = p_.head_dim, Hkv = p_.kv_heads, Lk = p_.kv_len;
    // Page summaries depend on the keys, so they are part of the timed cost (Quest keeps them with
    // the KV cache; here the cache arrives with the call).
    const T* kbase = static_cast<const T*>(in.k.data());
#pragma omp parallel for collapse(2) schedule(static)
    for (std::int64_t bkv = 0; bkv < p_.batch * Hkv; ++bkv)
      for (std::int64_t pg = 0; pg < nb; ++pg) {
        const std::int64_t k0 = pg * s_.block, count = std::min(s_.block, Lk - k0);
        kernels::page_min_max(kbase + (bkv * Lk + k0) * D, count, D, page_min_.data() + (bkv * nb + pg) * D,
                              page_max_.data() + (bkv * nb + pg) * D);
      }
    const float* mn = page_min_.data();
    const float* mx = page_max_.data();
    kernels::block_select_forward<T>(p_, in, out, s_, scratch_,
                                     [=](std::int64_t b, std::int64_t kvh, std::int64_t pg, const float* q) {
                                       const std::int64_t at = ((b * Hkv + kvh) * nb + pg) * D;
                                       return kernels::quest_upper_bound(q, mn + at, mx + at, D);
                                     });
  }

  Problem p_;
  kernels::BlockSelection s_;
  std::vector<float> page_min_, page_max_;
  std::vector<kernels::BlockSelectScratch> scratch_;
};

class Quest final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "quest";
    m.family = Family::sparse_dynamic;
    m.summary = "per query, the top pages by the min/max upper bound on q·k, plus the current page; exact softmax over them";
    m.reference = "Tang et al., Quest: Query-Aware Sparsity for Efficient Long-Context LLM Inference (2024)";
    m.params = {ParamSpec::integer("page", 16, 1, 1 << 20, "keys per page, each summarised by per-channel min and max"),
                ParamSpec::integer("pages", 64, 0, 1 << 20, "pages chosen per query by bound (the current page comes on top under causal)")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;
    if (Support s = kernels::fp32_or_bf16_only("quest", p); !s) return s;
    if (Support s = kernels::full_or_causal_only("quest", p); !s) return s;
    if (!p.causal() && params.integer("pages") == 0)
      return Support::no("quest with pages = 0 attends to nothing without a causal mask (no current page); use pages >= 1");
    return Support::yes();
  }

  // Per (batch, head): Σ_q [2·(D + Dv)·attended_q + 4·D·scored_q] — attended keys of the chosen pages
  // (whole pages, capped by the mask), and the bound: two products, a max and an add per channel for
  // each candidate page (0 when every candidate is chosen); plus 2·D comparisons per key for the page
  // min/max.
  double flops(const Problem& p, const Params& params) const override {
    const kernels::BlockSelectCounts c = kernels::block_select_counts(p, selection_of(params));
    const double bh = static_cast<double>(p.batch * p.heads);
    const double D = static_cast<double>(p.head_dim), Dv = static_cast<double>(p.value_dim);
    return bh * (2.0 * (D + Dv) * c.attended_pairs + 4.0 * D * c.scored_blocks) +
           2.0 * static_cast<double>(p.batch * p.kv_heads * p.kv_len) * D;
  }
  // Page summaries read every key and, over all queries, the chosen pages cover V.
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<QuestPlan>(p, selection_of(params));
  }
};

ATTNBENCH_REGISTER_METHOD(Quest);

}  // namespace
}  // namespace attnbench
