// Method "moba": Mixture of Block Attention — each query attends to the key blocks whose mean key it
// scores highest, always including its own block.
#include <vector>

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
kernels::BlockSelection selection_of(const Params& params) {
  kernels::BlockSelection s;
  s.block = params.integer("block");
  s.topk = params.integer("topk");
  s.own_in_budget = true;
  s.own_without_causal = true;
  return s;
}

class MobaPlan final : public Plan {
 public:
  MobaPlan(const Problem& p, const kernels::BlockSelection& s)
      : p_(p),
        s_(s),
        means_(static_cast<std::size_t>(p.batch * p.kv_heads * s.blocks(p) * p.head_dim)),
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
    // The gate depends on the keys, so it is part of the timed cost.
    kernels::block_mean_keys<T>(p_, in.k, s_.block, means_);
    const std::int64_t nb = s_.blocks(p_), D = p_.head_dim, Hkv = p_.kv_heads;
    const float* means = means_.data();
    kernels::block_select_forward<T>(p_, in, out, s_, scratch_,
                                     [=](std::int64_t b, std::int64_t kvh, std::int64_t blk, const float* q) {
                                       return kernels::dot_product(q, means + ((b * Hkv + kvh) * nb + blk) * D, D);
                                     });
  }

  Problem p_;
  kernels::BlockSelection s_;
  std::vector<float> means_;
  std::vector<kernels::BlockSelectScratch> scratch_;
};

class Moba final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "moba";
    m.family = Family::sparse_dynamic;
    m.summary = "per query, the top-k key blocks by q·mean(block keys), own block always included; exact softmax over them";
    m.reference = "Lu et al., MoBA: Mixture of Block Attention for Long-Context LLMs (2025)";
    m.params = {ParamSpec::integer("block", 512, 1, 1 << 20, "keys per block (MoBA's chunk size)"),
                ParamSpec::integer("topk", 3, 1, 1 << 20, "blocks each query attends to, its own block included")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;
    if (Support s = kernels::fp32_or_bf16_only("moba", p); !s) return s;
    if (Support s = kernels::full_or_causal_only("moba", p); !s) return s;
    return Support::yes();
  }

  // Per (batch, head): Σ_q [2·(D + Dv)·attended_q + 2·D·scored_q] with attended_q the keys of the chosen
  // blocks (each counted as a whole block, capped by the keys the mask allows) and scored_q the
  // candidate blocks gated (0 when every candidate is chosen); plus D adds per key for the block means.
  double flops(const Problem& p, const Params& params) const override {
    const kernels::BlockSelectCounts c = kernels::block_select_counts(p, selection_of(params));
    const double bh = static_cast<double>(p.batch * p.heads);
    const double D = static_cast<double>(p.head_dim), Dv = static_cast<double>(p.value_dim);
    return bh * (2.0 * (D + Dv) * c.attended_pairs + 2.0 * D * c.scored_blocks) +
           static_cast<double>(p.batch * p.kv_heads * p.kv_len) * D;
  }
  // The gate reads every key and, over all queries, the chosen blocks cover V: the dense minimum.
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<MobaPlan>(p, selection_of(params));
  }
};

ATTNBENCH_REGISTER_METHOD(Moba);

}  // namespace
}  // namespace attnbench
