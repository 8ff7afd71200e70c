// The shared body of the static sparse methods (family sparse_static): exact softmax attention under a
// named mask pattern (kernels/masks/), intersected with the problem's own mask, computed by flash_core
// over the tiles that mask leaves non-empty. Each method is one small file naming its pattern and the
// checks its definition needs; the pattern's parameters are the method's parameters.
#pragma once
#include <omp.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attnbench/method.hpp"
#include "kernels/cpu/flash_core.hpp"
#include "kernels/masks/patterns.hpp"

namespace attnbench::kernels {

// What a static sparse method computes exactly: the problem's mask and the pattern at once. A pattern
// that only allows keys at or before the query (`pattern_is_causal`) already is its intersection with a
// causal problem mask, and is returned alone so that partial tiles ask one predicate, not two.
inline std::shared_ptr<const Mask> compose_pattern(const Problem& p, const std::string& pattern, const Params& params,
                                                   bool pattern_is_causal = false) {
  auto mask = make_mask(pattern, params.values(), p.mask_shape());
  if (pattern_is_causal && p.mask->is_causal()) return mask;
  return intersect_masks(p.mask, std::move(mask));
}

// Key tile width for a band `span` keys wide: about a quarter of it, in [32, 128] and a multiple of 16.
// Narrower tiles waste fewer scores at the band's two ragged edges; much narrower ones pay more per-tile
// overhead than they save (measured on a 256-key window at L = 4096: 64 beats 128 by about 25%).
inline std::int64_t key_tile_for_span(std::int64_t span) {
  return std::clamp<std::int64_t>((span / 4 + 15) / 16 * 16, 32, 128);
}

// Tile sizes for a pattern made of `block`-token blocks: one tile per block pair where blocks are tile
// sized, so that tiles are whole or empty and need no predicate; flash's default otherwise.
inline std::pair<std::int64_t, std::int64_t> tiles_for_blocks(std::int64_t block) {
  if (block >= 32 && block <= 128) return {block, block};
  return {64, 128};
}

class MaskedFlashPlan final : public Plan {
 public:
  MaskedFlashPlan(const Problem& composed, FlashConfig cfg)
      : problem_(composed), cfg_(std::move(cfg)), workspace_(problem_, cfg_, omp_get_max_threads()) {}
  void run(const Inputs& in, Tensor& out) override { flash_forward_cpu(problem_, in, out, cfg_, workspace_); }

 private:
  Problem problem_;  // its mask is the composed one: partial tiles ask it element by element
  FlashConfig cfg_;  // block maps of the composed mask: empty tiles are skipped, full ones unmasked
  FlashWorkspace workspace_;
};

class StaticSparseMethod : public Method {
 public:
  MethodInfo info() const override {
    const Pattern pat = pattern();
    MethodInfo m;
    m.name = pat.name;
    m.family = Family::sparse_static;
    m.summary = pat.summary;
    m.reference = pat.reference;
    m.params = pat.params;
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;
    const std::string name = pattern().name;
    if (p.dtype != Dtype::f32 && p.dtype != Dtype::bf16)
      return Support::no(name + " computes in fp32 from fp32 or bf16 inputs, not " + std::string(to_string(p.dtype)));
    if (!p.mask) return Support::no(name + " needs the problem's mask (none was set)");
    if (p.cross)
      return Support::no(name +
                         " is a pattern over positions in one sequence; with keys from another sequence "
                         "(cross attention) key positions say nothing about the queries");
    if (p.q_len > p.kv_len)
      return Support::no(name + " places the queries at the last q_len positions of the key sequence, so q_len (" +
                         std::to_string(p.q_len) + ") must not exceed kv_len (" + std::to_string(p.kv_len) + ")");
    return check(p, params);
  }

  // The useful FLOPs, as flash counts them: 2·(D + Dv)·B·H times the (q, k) pairs the composed mask
  // allows (its exact density); the kernel also computes the masked-out pairs of partial tiles.
  double flops(const Problem& p, const Params& params) const override {
    Problem composed = p;
    composed.mask = compose_pattern(p, pattern().name, params, pattern_is_causal(params));
    return attention_flops(composed);
  }
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    Problem composed = p;
    composed.mask = compose_pattern(p, pattern().name, params, pattern_is_causal(params));
    const auto [block_q, block_k] = tile_sizes(params);
    return std::make_unique<MaskedFlashPlan>(composed, make_flash_config(composed, block_q, block_k));
  }

 protected:
  struct Pattern {
    std::string name, summary, reference;
    std::vector<ParamSpec> params;
  };
  virtual Pattern pattern() const = 0;
  // Refusals the pattern's definition needs beyond the declared parameter ranges.
  virtual Support check(const Problem&, const Params&) const { return Support::yes(); }
  // Whether the pattern only ever allows keys at or before the query (k <= pos).
  virtual bool pattern_is_causal(const Params&) const { return false; }
  // Query and key tile sizes for flash_core.
  virtual std::pair<std::int64_t, std::int64_t> tile_sizes(const Params&) const { return {64, 128}; }
};

}  // namespace attnbench::kernels
