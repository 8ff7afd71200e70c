// Method "memeff": exact attention by Rabe & Staats' chunking — per key chunk a (max, exp-sum, partial
// output) summary, combined afterwards by max-rescaling; memory bounded by the chunk sizes.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attnbench/method.hpp"
#include "kernels/cpu/exact_common.hpp"
#include "kernels/cpu/score_products.hpp"

namespace attnbench {
namespace {

using kernels::narrow;
using kernels::widen;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The chunk sizes actually used for a problem: the configured ones, capped by the lengths; in "sqrt"
// mode the key chunk is ⌈√kv_len⌉, the paper's setting in which the per-query-chunk memory
// (query_chunk·key_chunk scores plus kv_len/key_chunk partial outputs) grows as O(√kv_len).
struct Chunks {
  std::int64_t query = 1, key = 1, key_chunks = 0;
};
Chunks chunks_of(const Problem& p, const Params& params) {
  Chunks c;
  c.query = std::max<std::int64_t>(1, std::min(params.integer("query_chunk"), p.q_len));
  std::int64_t key = params.integer("key_chunk");
  if (params.string("chunking") == "sqrt") {
    key = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(p.kv_len))));
    while (key * key < p.kv_len) ++key;  // guard against sqrt rounding down
  }
  c.key = std::max<std::int64_t>(1, std::min(key, p.kv_len));
  c.key_chunks = (p.kv_len + c.key - 1) / c.key;
  return c;
}

// One thread's working memory: everything the algorithm holds for one query chunk.
struct ChunkScratch {
  std::vector<float> query;      // [query_chunk][head_dim], pre-scaled
  std::vector<float> keys_t;     // [head_dim][key_chunk], the key chunk transposed and widened
  std::vector<float> scores;     // [query_chunk][key_chunk], then exp(score − chunk max)
  std::vector<float> chunk_out;  // [key_chunks][query_chunk][value_dim] unnormalised partial outputs
  std::vector<float> chunk_max;  // [key_chunks][query_chunk]
  std::vector<float> chunk_sum;  // [key_chunks][query_chunk]
  ChunkScratch(const Problem& p, const Chunks& c)
      : query(static_cast<std::size_t>(c.query * p.head_dim)),
        keys_t(static_cast<std::size_t>(p.head_dim * c.key)),
        scores(static_cast<std::size_t>(c.query * c.key)),
        chunk_out(static_cast<std::size_t>(c.key_chunks * c.query * p.value_dim)),
        chunk_max(static_cast<std::size_t>(c.key_chunks * c.query)),
        chunk_sum(static_cast<std::size_t>(c.key_chunks * c.query)) {}
};

// No more threads (and scratch copies) than work items of (batch, head, query chunk).
std::int64_t threads_for(const Problem& p, const Chunks& c) {
  const std::int64_t items = p.batch * p.heads * ((p.q_len + c.query - 1) / c.query);
  return std::max<std::int64_t>(1, std::min<std::int64_t>(omp_get_max_threads(), items));
}

class MemeffPlan final : public kernels::Fp32OrBf16Plan<MemeffPlan> {
 public:
  MemeffPlan(const Problem& p, const Chunks& c)
      : Fp32OrBf16Plan(p.dtype),
        p_(p),
        c_(c),
        scratch_(kernels::per_thread_scratch<ChunkScratch>(threads_for(p, c), p, c)) {}

  // The kernel for stored element type T, called by run().
  template <class T>
  void forward(const kernels::TypedIO<T>& io) {
    const Problem& p = p_;
    const std::int64_t B = p.batch, H = p.heads, Lq = p.q_len, Lk = p.kv_len, D = p.head_dim, Dv = p.value_dim;
    const std::int64_t qc = c_.query, kc = c_.key, nkc = c_.key_chunks;
    const std::int64_t q_chunks = (Lq + qc - 1) / qc;
    const bool causal = p.causal();
    const std::int64_t offset = Lk - Lq;
    const float scale = static_cast<float>(p.scale);

#pragma omp parallel num_threads(static_cast <int>(scratch_.size()))
    {
      ChunkScratch& w = scratch_[static_cast<std::size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t item = 0; item < B * H * q_chunks; ++item) {
        const std::int64_t bh = item / q_chunks, b = bh / H, kvh = p.kv_head_of(bh % H);
        const std::int64_t q0 = (item % q_chunks) * qc, nq = std::min(qc, Lq - q0);
        const T* kbh = io.k + (b * p.kv_heads + kvh) * Lk * D;
        const T* vbh = io.v + (b * p.kv_heads + kvh) * Lk * Dv;
        for (std::int64_t i = 0; i < nq; ++i)
          for (std::int64_t d = 0; d < D; ++d)
            w.query[i * D + d] = widen(io.q[(bh * Lq + q0 + i) * D + d]) * scale;

        // summarize_chunk for every key chunk: local max, exp-sum and partial output per query.
        for (std::int64_t j = 0; j < nkc; ++j) {
          const std::int64_t k0 = j * kc, k1 = std::min(k0 + kc, Lk);
          float* cmax = w.chunk_max.data() + j * qc;
          float* csum = w.chunk_sum.data() + j * qc;
          // Under the causal mask query q0 + i sees keys up to q0 + i + offset: the chunk is scored up to
          // the last query's horizon, and a chunk wholly in the future of every query is skipped.
          const std::int64_t chunk_end = causal ? std::min(k1, q0 + nq - 1 + offset + 1) : k1;
          if (chunk_end > k0) {
            kernels::transpose_keys(kbh + k0 * D, chunk_end - k0, D, w.keys_t.data(), kc);
            kernels::scores_from_transposed_keys(w.query.data(), D, nq, w.keys_t.data(), kc, chunk_end - k0, D,
                                                 w.scores.data(), kc);
          }
          const std::int64_t width = std::max<std::int64_t>(chunk_end - k0, 0);
          for (std::int64_t i = 0; i < nq; ++i) {
            const std::int64_t len = std::max<std::int64_t>((causal ? std::min(k1, q0 + i + offset + 1) : k1) - k0, 0);
            float* srow = w.scores.data() + i * kc;
            float m = kNegInf;
            for (std::int64_t k = 0; k < len; ++k) m = std::max(m, srow[k]);
            // Probabilities relative to the chunk max; keys past the row's causal horizon weigh 0.
            float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
            for (std::int64_t k = 0; k < len; ++k) {
              srow[k] = kernels::exp_nonpositive(srow[k] - m);
              sum += srow[k];
            }
            std::fill(srow + len, srow + width, 0.0f);
            cmax[i] = m;  // −inf for a chunk wholly in the row's future: its summary is empty
            csum[i] = sum;
          }
          // Partial outputs, four query rows at a time so that each value row is loaded once per four.
          for (std::int64_t i0 = 0; i0 < nq; i0 += 4) {
            const std::int64_t nr = std::min<std::int64_t>(4, nq - i0);
            float* o[4];
            const float* pr[4];
            for (std::int64_t r = 0; r < 4; ++r) {
              const std::int64_t i = i0 + std::min(r, nr - 1);  // padding rows alias the last real one
              o[r] = w.chunk_out.data() + (j * qc + i) * Dv;
              pr[r] = w.scores.data() + i * kc;
            }
            for (std::int64_t r = 0; r < nr; ++r) std::fill(o[r], o[r] + Dv, 0.0f);
            for (std::int64_t k = 0; k < width; ++k) {
              const T* vrow = vbh + (k0 + k) * Dv;
              if (nr == 4) {
                const float p0 = pr[0][k], p1 = pr[1][k], p2 = pr[2][k], p3 = pr[3][k];
#pragma omp simd
                for (std::int64_t c = 0; c < Dv; ++c) {
                  const float v = widen(vrow[c]);
                  o[0][c] += p0 * v;
                  o[1][c] += p1 * v;
                  o[2][c] += p2 * v;
                  o[3][c] += p3 * v;
                }
              } else {
                for (std::int64_t r = 0; r < nr; ++r) {
                  const float pk = pr[r][k];
#pragma omp simd
                  for (std::int64_t c = 0; c < Dv; ++c) o[r][c] += pk * widen(vrow[c]);
                }
              }
            }
          }
        }

        // Combine: rescale every chunk's summary to the global max, then normalise.
        for (std::int64_t i = 0; i < nq; ++i) {
          T* odst = io.o + (bh * Lq + q0 + i) * Dv;
          float global_max = kNegInf;
          for (std::int64_t j = 0; j < nkc; ++j) global_max = std::max(global_max, w.chunk_max[j * qc + i]);
          if (global_max == kNegInf) {  // no key allowed: zeros by convention
            for (std::int64_t c = 0; c < Dv; ++c) narrow(0.0f, odst + c);
            continue;
          }
          float total = 0.0f;
          // Accumulate into the first live chunk's partial output in place, to need no extra buffer.
          std::int64_t first = -1;
          for (std::int64_t j = 0; j < nkc; ++j) {
            const float m = w.chunk_max[j * qc + i];
            if (m == kNegInf) continue;
            const float weight = std::exp(m - global_max);
            total += weight * w.chunk_sum[j * qc + i];
            float* part = w.chunk_out.data() + (j * qc + i) * Dv;
            if (first < 0) {
              first = j;
              for (std::int64_t c = 0; c < Dv; ++c) part[c] *= weight;
            } else {
              float* dst = w.chunk_out.data() + (first * qc + i) * Dv;
#pragma omp simd
              for (std::int64_t c = 0; c < Dv; ++c) dst[c] += weight * part[c];
            }
          }
          const float* result = w.chunk_out.data() + (first * qc + i) * Dv;
          const float inv = 1.0f / total;
          for (std::int64_t c = 0; c < Dv; ++c) narrow(result[c] * inv, odst + c);
        }
      }
    }
  }

 private:
  Problem p_;
  Chunks c_;
  std::vector<ChunkScratch> scratch_;
};

class Memeff final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "memeff";
    m.family = Family::exact;
    m.summary =
        "exact attention in query × key chunks, per-chunk (max, sum, output) summaries combined by max-rescaling";
    m.reference = "Rabe & Staats, Self-attention Does Not Need O(n^2) Memory (2021)";
    m.params = {
        ParamSpec::integer("query_chunk", 1024, 1, 1 << 20, "queries per chunk (the paper's default 1024)"),
        ParamSpec::integer("key_chunk", 4096, 1, 1 << 22,
                           "keys per chunk (the paper's default 4096); ignored when chunking = sqrt"),
        ParamSpec::choice("chunking", "fixed", {"fixed", "sqrt"},
                          "fixed: key_chunk as given; sqrt: key chunk ⌈√kv_len⌉, the paper's O(√n)-memory setting")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    return kernels::fp32_bf16_full_or_causal(*this, "memeff", p, params, d);
  }

  // Exactly the dense count: every allowed (query, key) pair is scored and weighted once, and chunks or
  // keys a causal mask hides are skipped (FlashAttention's convention, halved for causal).
  double flops(const Problem& p, const Params&) const override { return attention_flops(p); }
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<MemeffPlan>(p, chunks_of(p, params));
  }
};

ATTNBENCH_REGISTER_METHOD(Memeff);

}  // namespace
}  // namespace attnbench
