// Method "dense": naive exact attention that materialises the whole [B, H, Lq, Lk] fp32 score matrix,
// then softmax, then P·V: the honest textbook peer that tiled methods are measured against.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "attnbench/method.hpp"

namespace attnbench {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

double score_matrix_bytes(const Problem& p) {
  return 4.0 * static_cast<double>(p.batch * p.heads) * static_cast<double>(p.q_len) * static_cast<double>(p.kv_len);
}

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

inline float widen(float x) { return x; }
inline float widen(std::uint16_t x) { return bf16_to_float(x); }
inline void narrow(float x, float* dst) { *dst = x; }
inline void narrow(float x, std::uint16_t* dst) { *dst = float_to_bf16(x); }

class DensePlan final : public Plan {
 public:
  explicit DensePlan(const Problem& p)
      : p_(p),
        // Allocated and touched here, so the matrix is part of the method's measured memory and the
        // timed run pays no page faults.
        scores_(static_cast<std::size_t>(p.batch * p.heads * p.q_len * p.kv_len)),
        threads_(omp_get_max_threads()),
        rows_(static_cast<std::size_t>(threads_ * p.value_dim)) {}

  void run(const Inputs& in, Tensor& out) override {
    if (p_.dtype == Dtype::bf16)
      forward<std::uint16_t>(in, out);
    else
      forward<float>(in, out);
  }

 private:
  template <class T>
  void forward(const Inputs& in, Tensor& out) {
    const Problem& p = p_;
    const Mask& mask = *p.mask;
    const bool full = mask.is_full(), causal = mask.is_causal();
    const std::int64_t B = p.batch, H = p.heads, Hkv = p.kv_heads, Lq = p.q_len, Lk = p.kv_len;
    const std::int64_t D = p.head_dim, Dv = p.value_dim, offset = Lk - Lq;
    const float scale = static_cast<float>(p.scale);
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const T* q = static_cast<const T*>(in.q.data());
    const T* k = static_cast<const T*>(in.k.data());
    const T* v = static_cast<const T*>(in.v.data());
    T* o = static_cast<T*>(out.data());
    float* scores = scores_.data();

#pragma omp parallel num_threads(threads_)
    {
      float* acc = rows_.data() + omp_get_thread_num() * Dv;

      // 1. S = scale·Q·Kᵀ, every entry, masked ones -inf.
#pragma omp for collapse(3) schedule(static)
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t i = 0; i < Lq; ++i) {
            const T* qrow = q + ((b * H + h) * Lq + i) * D;
            const T* kbase = k + (b * Hkv + p.kv_head_of(h)) * Lk * D;
            float* srow = scores + ((b * H + h) * Lq + i) * Lk;
            for (std::int64_t j = 0; j < Lk; ++j) {
              const bool ok = full || (causal ? j <= i + offset : mask.allowed(b, h, i, j));
              if (!ok) {
                srow[j] = neg_inf;
                continue;
              }
              const T* krow = kbase + j * D;
              float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
              for (std::int64_t d = 0; d < D; ++d) dot += widen(qrow[d]) * widen(krow[d]);
              srow[j] = scale * dot;
            }
          }

          // 2. P = softmax(S) row by row, in place; a row with no allowed key becomes all zeros.
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < B * H * Lq; ++r) {
        float* srow = scores + r * Lk;
        float mx = neg_inf;
#pragma omp simd reduction(max : mx)
        for (std::int64_t j = 0; j < Lk; ++j) mx = std::max(mx, srow[j]);
        if (mx == neg_inf) {
          std::fill(srow, srow + Lk, 0.0f);
          continue;
        }
        float sum = 0.0f;
        for (std::int64_t j = 0; j < Lk; ++j) {
          srow[j] = std::exp(srow[j] - mx);
          sum += srow[j];
        }
        const float inv = 1.0f / sum;
#pragma omp simd
        for (std::int64_t j = 0; j < Lk; ++j) srow[j] *= inv;
      }

      // 3. O = P·V, as axpys over the value dim.
#pragma omp for collapse(3) schedule(static)
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t i = 0; i < Lq; ++i) {
            const float* prow = scores + ((b * H + h) * Lq + i) * Lk;
            const T* vbase = v + (b * Hkv + p.kv_head_of(h)) * Lk * Dv;
            const std::int64_t kv_end = causal ? std::clamp<std::int64_t>(i + offset + 1, 0, Lk) : Lk;
            std::fill(acc, acc + Dv, 0.0f);
            for (std::int64_t j = 0; j < kv_end; ++j) {
              const float pj = prow[j];
              const T* vrow = vbase + j * Dv;
#pragma omp simd
              for (std::int64_t c = 0; c < Dv; ++c) acc[c] += pj * widen(vrow[c]);
            }
            T* orow = o + ((b * H + h) * Lq + i) * Dv;
            for (std::int64_t c = 0; c < Dv; ++c) narrow(acc[c], orow + c);
          }
    }
  }

  Problem p_;
  std::vector<float> scores_;
  int threads_;
  std::vector<float> rows_;
};

class Dense final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "dense";
    m.family = Family::exact;
    m.summary = "naive exact attention: the full fp32 score matrix, then softmax, then P·V (CPU, fp32/bf16)";
    m.reference = "Vaswani et al., Attention Is All You Need (2017)";
    m.params = {ParamSpec::number("max_score_gib", 8.0, 0.0, 1024.0,
                                  "largest score matrix (B·H·Lq·Lk·4 bytes) to allocate, in GiB; the "
                                  "machine's limit is half its physical memory whatever this says")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (!d.is_cpu()) return Support::no("dense has a CPU backend only; run it with --device cpu");
    if (p.dtype != Dtype::f32 && p.dtype != Dtype::bf16)
      return Support::no("dense computes in fp32 from fp32 or bf16 inputs, not " + std::string(to_string(p.dtype)));
    if (p.kv_heads < 1 || p.heads % p.kv_heads != 0)
      return Support::no("heads (" + std::to_string(p.heads) + ") must be a multiple of kv_heads (" +
                         std::to_string(p.kv_heads) + ")");
    const double need = score_matrix_bytes(p);
    const double by_param = params.has("max_score_gib") ? params.number("max_score_gib") * kGiB : 8.0 * kGiB;
    const double by_machine = physical_memory_bytes() / 2;
    const bool machine_limits = by_machine > 0 && by_machine < by_param;
    const double limit = machine_limits ? by_machine : by_param;
    if (need > limit) {
      char why[256];
      std::snprintf(why, sizeof why,
                    "score matrix needs %.1f GiB (B·H·Lq·Lk·4 bytes = %.0f bytes), more than the %.1f GiB limit (%s)",
                    need / kGiB, need, limit / kGiB,
                    machine_limits ? "half of this machine's physical memory" : "parameter max_score_gib");
      return Support::no(why);
    }
    return Support::yes();
  }

  double flops(const Problem& p, const Params&) const override { return attention_flops(p); }
  // Q, K, V, O once, plus the score matrix written, read and rewritten by the softmax, and read by P·V.
  double bytes(const Problem& p, const Params&) const override {
    return attention_bytes(p) + 4.0 * score_matrix_bytes(p);
  }

  std::unique_ptr<Plan> plan(const Problem& p, const Params&, const Device&) const override {
    return std::make_unique<DensePlan>(p);
  }
};

ATTNBENCH_REGISTER_METHOD(Dense);

}  // namespace
}  // namespace attnbench
