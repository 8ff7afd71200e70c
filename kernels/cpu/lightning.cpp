// Method "lightning": Lightning Attention-2 (Qin et al. 2024), causal linear attention computed in blocks:
// within a block the causal-masked quadratic form, across blocks a running key-value state.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attnbench/method.hpp"
#include "kernels/cpu/linear_core.hpp"

namespace attnbench {
namespace {

using kernels::load_row;
using kernels::store_row;

// What it computes is the paper's O = [(QKᵀ) ⊙ M] V, with M_ts = λ^(t−s) for s ≤ t and 0 otherwise:
//   out_t = scale · Σ_{s ≤ t} λ^(t−s) (q_t·k_s) v_s
// with the identity feature map and no normalisation (as the paper, whose TransNormerLLM normalises the
// output outside the attention), λ = 1 when `decay` is 0. The problem's scale multiplies qᵀk as in every
// method here. Positions are bottom-right aligned: query i is at t = i + kv_len − q_len; a query before
// the first key gets a zero row.
//
// For a block of queries at positions [t0, t1) and the state S(t0) = Σ_{s < t0} λ^(t0−s) k_s v_sᵀ:
//   out_t = scale · (λ^(t−t0) q_tᵀ S(t0) + Σ_{t0 ≤ s ≤ t} λ^(t−s) (q_t·k_s) v_s)       (inter + intra)
//   S(t1) = λ^(t1−t0) S(t0) + Σ_{t0 ≤ s < t1} λ^(t1−s) k_s v_sᵀ
class LightningPlan final : public Plan {
 public:
  LightningPlan(const Problem& p, std::int64_t block, double decay)
      : p_(p), block_(std::min(block, std::max<std::int64_t>(p.q_len, 1))), threads_(omp_get_max_threads()) {
    const double lambda = decay == 0.0 ? 1.0 : decay;
    powers_.resize(static_cast<std::size_t>(block_ + 1));
    for (std::int64_t n = 0; n <= block_; ++n)
      powers_[n] = static_cast<float>(std::pow(lambda, static_cast<double>(n)));
    const std::int64_t D = p.head_dim, Dv = p.value_dim;
    layout_.state = 0;
    layout_.k_block = layout_.state + D * Dv;
    layout_.v_block = layout_.k_block + block_ * D;
    layout_.q = layout_.v_block + block_ * Dv;
    layout_.o = layout_.q + D;
    layout_.per_thread = layout_.o + Dv;
    buffer_ = kernels::AlignedFloats(static_cast<std::size_t>(threads_ * layout_.per_thread));
  }

  void run(const Inputs& in, Tensor& out) override {
    const Problem& p = p_;
    const std::int64_t B = p.batch, H = p.heads, Hkv = p.kv_heads, G = p.group_size();
    const std::int64_t Lq = p.q_len, Lk = p.kv_len, D = p.head_dim, Dv = p.value_dim;
    const std::int64_t offset = Lk - Lq;
    const float scale = static_cast<float>(p.scale);
    const float* lam = powers_.data();

    // One (batch, kv head) per work item: the heads of a GQA group read the same state and key block.
#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(threads_)
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t g = 0; g < Hkv; ++g) {
        float* slice = buffer_.data() + omp_get_thread_num() * layout_.per_thread;
        float* S = slice + layout_.state;
        float* kb = slice + layout_.k_block;
        float* vb = slice + layout_.v_block;
        float* q = slice + layout_.q;
        float* o = slice + layout_.o;
        const std::int64_t kv_row = (b * Hkv + g) * Lk;
        std::fill(S, S + D * Dv, 0.0f);

        // Loads keys [s0, s1) (clipped at 0) and folds them into S, which moves from S(t0) to S(t1).
        auto load_keys = [&](std::int64_t s0, std::int64_t s1) {
          for (std::int64_t s = std::max<std::int64_t>(s0, 0); s < s1; ++s) {
            load_row(in.k, (kv_row + s) * D, D, kb + (s - s0) * D);
            load_row(in.v, (kv_row + s) * Dv, Dv, vb + (s - s0) * Dv);
          }
        };
        auto advance_state = [&](std::int64_t t0, std::int64_t t1) {
          if (lam[t1 - t0] != 1.0f)
            for (std::int64_t i = 0; i < D * Dv; ++i) S[i] *= lam[t1 - t0];
          for (std::int64_t s = std::max<std::int64_t>(t0, 0); s < t1; ++s) {
            const float* k = kb + (s - t0) * D;
            const float* v = vb + (s - t0) * Dv;
            const float w = lam[t1 - s];
            for (std::int64_t d = 0; d < D; ++d) {
              const float kd = w * k[d];
              float* __restrict row = S + d * Dv;
              for (std::int64_t c = 0; c < Dv; ++c) row[c] += kd * v[c];
            }
          }
        };

        // Keys before the first query's position (kv_len > q_len) only feed the state.
        for (std::int64_t t0 = 0; t0 < offset; t0 += block_) {
          const std::int64_t t1 = std::min(t0 + block_, offset);
          load_keys(t0, t1);
          advance_state(t0, t1);
        }

        for (std::int64_t q0 = 0; q0 < Lq; q0 += block_) {
          const std::int64_t q1 = std::min(q0 + block_, Lq);
          const std::int64_t t0 = q0 + offset, t1 = q1 + offset;
          if (t1 <= 0) {  // the whole block precedes the first key
            std::fill(o, o + Dv, 0.0f);
            for (std::int64_t h = g * G; h < (g + 1) * G; ++h)
              for (std::int64_t i = q0; i < q1; ++i) store_row(out, ((b * H + h) * Lq + i) * Dv, Dv, o);
            continue;
          }
          load_keys(t0, t1);
          for (std::int64_t h = g * G; h < (g + 1) * G; ++h)
            for (std::int64_t i = q0; i < q1; ++i) {
              const std::int64_t t = i + offset;
              std::fill(o, o + Dv, 0.0f);
              if (t >= 0) {
                load_row(in.q, ((b * H + h) * Lq + i) * D, D, q);
                // Inter-block: the decayed state of every key before the block (zero while t0 <= 0).
                if (t0 > 0) {
                  for (std::int64_t d = 0; d < D; ++d) {
                    const float qd = lam[t - t0] * q[d];
                    const float* __restrict row = S + d * Dv;
                    for (std::int64_t c = 0; c < Dv; ++c) o[c] += qd * row[c];
                  }
                }
                // Intra-block: the causal-masked quadratic form over the block's keys up to t.
                for (std::int64_t s = std::max<std::int64_t>(t0, 0); s <= t; ++s) {
                  const float* k = kb + (s - t0) * D;
                  float dot = 0.0f;
                  for (std::int64_t d = 0; d < D; ++d) dot += q[d] * k[d];
                  const float w = lam[t - s] * dot;
                  const float* __restrict v = vb + (s - t0) * Dv;
                  for (std::int64_t c = 0; c < Dv; ++c) o[c] += w * v[c];
                }
                for (std::int64_t c = 0; c < Dv; ++c) o[c] *= scale;
              }
              store_row(out, ((b * H + h) * Lq + i) * Dv, Dv, o);
            }
          advance_state(t0, t1);
        }
      }
  }

 private:
  struct Layout {
    std::int64_t state = 0, k_block = 0, v_block = 0, q = 0, o = 0, per_thread = 0;
  };
  Problem p_;
  std::int64_t block_;
  int threads_;
  std::vector<float> powers_;  // λ^n for n in [0, block]
  Layout layout_;
  kernels::AlignedFloats buffer_;
};

class Lightning final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "lightning";
    m.family = Family::linear;
    m.summary =
        "Lightning Attention-2: causal linear attention (identity features, unnormalised, optional decay) in blocks: "
        "quadratic intra-block, KV state inter-block (CPU, fp32/bf16)";
    m.reference =
        "Qin et al., Lightning Attention-2: A Free Lunch for Handling Unlimited Sequence Lengths in Large Language "
        "Models (2024)";
    m.params = {
        ParamSpec::integer("block", 64, 1, 65536, "tokens per block: quadratic form inside, running state across"),
        ParamSpec::number("decay", 0.0, 0.0, 1.0, "decay λ: key s weighs λ^(t−s) at query t; 0 means none (λ = 1)")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;
    if (Support s = kernels::linear_family_supports("lightning", p, /*has_causal_form=*/true); !s) return s;
    if (!p.causal())
      return Support::no(
          "lightning is causal linear attention (its blocks exist to compute the causal prefix); "
          "use mask causal, or method linear for non-causal linear attention");
    return Support::yes();
  }

  // Per (batch, kv head): each key enters the state once (2·D·Dv). Per (batch, head): each query reads
  // the state (2·D·Dv) and forms the intra-block quadratic form over (n(n+1)/2 pairs per block of n
  // queries) at 2·(D + Dv) per pair.
  double flops(const Problem& p, const Params& params) const override {
    const std::int64_t block = std::min(params.integer("block"), std::max<std::int64_t>(p.q_len, 1));
    const double D = static_cast<double>(p.head_dim), Dv = static_cast<double>(p.value_dim);
    const std::int64_t full = p.q_len / block, rest = p.q_len % block;
    const double pairs = static_cast<double>(full) * static_cast<double>(block * (block + 1) / 2) +
                         static_cast<double>(rest * (rest + 1) / 2);
    return static_cast<double>(p.batch * p.kv_heads * p.kv_len) * 2.0 * D * Dv +
           static_cast<double>(p.batch * p.heads) *
               (static_cast<double>(p.q_len) * 2.0 * D * Dv + pairs * 2.0 * (D + Dv));
  }
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<LightningPlan>(p, params.integer("block"), params.number("decay"));
  }
};

ATTNBENCH_REGISTER_METHOD(Lightning);

}  // namespace
}  // namespace attnbench
