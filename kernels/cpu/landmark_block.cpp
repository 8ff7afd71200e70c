// Method "landmark_block": Landmark-Attention-style block retrieval at inference — each query retrieves
// the top-k blocks by q·(block representative) and attends exactly to them plus its local block.
#include <vector>

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
kernels::BlockSelection selection_of(const Params& params) {
  kernels::BlockSelection s;
  s.block = params.integer("block");
  s.topk = params.integer("topk");
  s.own_in_budget = false;
  s.own_without_causal = true;
  return s;
}

class LandmarkBlockPlan final : public Plan {
 public:
  LandmarkBlockPlan(const Problem& p, const kernels::BlockSelection& s)
      : p_(p),
        s_(s),
        representatives_(static_cast<std::size_t>(p.batch * p.kv_heads * s.blocks(p) * p.head_dim)),
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
    kernels::block_mean_keys<T>(p_, in.k, s_.block, representatives_);
    const std::int64_t nb = s_.blocks(p_), D = p_.head_dim, Hkv = p_.kv_heads;
    const float* reps = representatives_.data();
    kernels::block_select_forward<T>(p_, in, out, s_, scratch_,
                                     [=](std::int64_t b, std::int64_t kvh, std::int64_t blk, const float* q) {
                                       return kernels::dot_product(q, reps + ((b * Hkv + kvh) * nb + blk) * D, D);
                                     });
  }

  Problem p_;
  kernels::BlockSelection s_;
  std::vector<float> representatives_;
  std::vector<kernels::BlockSelectScratch> scratch_;
};

class LandmarkBlock final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "landmark_block";
    m.family = Family::sparse_dynamic;
    m.summary = "per query, retrieve the top-k blocks by q·(mean key, standing in for a trained landmark) plus the local block; exact softmax over them";
    m.reference = "Mohtashami & Jaggi, Landmark Attention: Random-Access Infinite Context Length for Transformers (2023)";
    m.params = {ParamSpec::integer("block", 64, 1, 1 << 20, "keys per block (one landmark per block in the paper)"),
                ParamSpec::integer("topk", 4, 0, 1 << 20, "blocks retrieved per query, besides its local block")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;
    if (Support s = kernels::fp32_or_bf16_only("landmark_block", p); !s) return s;
    if (Support s = kernels::full_or_causal_only("landmark_block", p); !s) return s;
    return Support::yes();
  }

  // Per (batch, head): Σ_q [2·(D + Dv)·attended_q + 2·D·scored_q] (attended keys of the local and the
  // retrieved blocks, whole blocks, capped by the mask; scored_q the candidates rated, 0 when all are
  // retrieved anyway); plus D adds per key for the representatives.
  double flops(const Problem& p, const Params& params) const override {
    const kernels::BlockSelectCounts c = kernels::block_select_counts(p, selection_of(params));
    const double bh = static_cast<double>(p.batch * p.heads);
    const double D = static_cast<double>(p.head_dim), Dv = static_cast<double>(p.value_dim);
    return bh * (2.0 * (D + Dv) * c.attended_pairs + 2.0 * D * c.scored_blocks) +
           static_cast<double>(p.batch * p.kv_heads * p.kv_len) * D;
  }
  // Representatives read every key and, over all queries, the retrieved blocks cover V.
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<LandmarkBlockPlan>(p, selection_of(params));
  }
};

ATTNBENCH_REGISTER_METHOD(LandmarkBlock);

}  // namespace
}  // namespace attnbench
