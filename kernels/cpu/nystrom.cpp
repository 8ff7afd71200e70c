// Method "nystrom": Nyströmformer (Xiong et al. 2021), softmax attention approximated through m landmarks
// (segment means of Q and K) and the Moore-Penrose pseudo-inverse of the landmark kernel, found by the
// paper's iterative method. Non-causal only.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attnbench/method.hpp"
#include "kernels/cpu/linear_core.hpp"

namespace attnbench {
namespace {

using kernels::load_row;
using kernels::store_row;

// With Q̃, K̃ the landmarks (mean of the rows in each of m near-equal segments of the queries and keys):
//   F = softmax(scale·Q K̃ᵀ) [Lq×m],  A = softmax(scale·Q̃ K̃ᵀ) [m×m],  B = softmax(scale·Q̃ Kᵀ) [m×Lk]
//   out = F · A⁺ · (B V)
// evaluated right to left so that nothing larger than m×max(m, Dv) exists. A⁺ comes from the paper's
// iteration Z ← ¼ Z (13I − AZ (15I − AZ (7I − AZ))) from Z₀ = Aᵀ / (‖A‖₁‖A‖∞), in float64 (A is small
// and the iteration amplifies rounding). The paper's depthwise convolution on V is a model layer, not
// part of the attention, and is left out.
class NystromPlan final : public Plan {
 public:
  NystromPlan(const Problem& p, std::int64_t landmarks, std::int64_t pinv_iters)
      : p_(p), m_(landmarks), iters_(pinv_iters), threads_(omp_get_max_threads()) {
    const std::int64_t m = m_, D = p.head_dim, Dv = p.value_dim;
    auto& L = layout_;
    L.q_marks = 0;
    L.k_marks = L.q_marks + m * D;
    L.bv = L.k_marks + m * D;  // B·V, then A⁺·(B·V)
    L.w = L.bv + m * Dv;
    L.row_max = L.w + m * Dv;  // online softmax state per landmark row of B
    L.row_sum = L.row_max + m;
    L.scores = L.row_sum + m;  // one key's (or query's) scores against every landmark
    L.x = L.scores + m;
    L.v = L.x + std::max(D, Dv);
    L.per_thread = L.v + Dv;
    floats_ = kernels::AlignedFloats(static_cast<std::size_t>(threads_ * L.per_thread));
    // A, Z and three m×m temporaries per thread, in float64.
    doubles_.resize(static_cast<std::size_t>(threads_ * 5 * m * m));
  }

  void run(const Inputs& in, Tensor& out) override {
    const Problem& p = p_;
    const std::int64_t B = p.batch, H = p.heads;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(threads_)
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h) head(in, out, b, h, omp_get_thread_num());
  }

 private:
  struct Layout {
    std::int64_t q_marks = 0, k_marks = 0, bv = 0, w = 0, row_max = 0, row_sum = 0, scores = 0, x = 0, v = 0;
    std::int64_t per_thread = 0;
  };

  // Landmark r is the mean of rows [r·len/m, (r+1)·len/m): every segment has len/m or len/m + 1 rows.
  void segment_means(const Tensor& t, std::int64_t row0, std::int64_t len, float* marks, float* x) const {
    const std::int64_t D = p_.head_dim;
    for (std::int64_t r = 0; r < m_; ++r) {
      const std::int64_t s0 = r * len / m_, s1 = (r + 1) * len / m_;
      float* mark = marks + r * D;
      std::fill(mark, mark + D, 0.0f);
      for (std::int64_t s = s0; s < s1; ++s) {
        load_row(t, (row0 + s) * D, D, x);
        for (std::int64_t d = 0; d < D; ++d) mark[d] += x[d];
      }
      const float inv = 1.0f / static_cast<float>(s1 - s0);
      for (std::int64_t d = 0; d < D; ++d) mark[d] *= inv;
    }
  }

  static float dot(const float* a, const float* b, std::int64_t n) {
    float s = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
  }

  // c = a·b for n×n row-major matrices.
  static void matmul(const double* a, const double* b, double* c, std::int64_t n) {
    std::fill(c, c + n * n, 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < n; ++k) {
        const double aik = a[i * n + k];
        const double* __restrict bk = b + k * n;
        double* __restrict ci = c + i * n;
        for (std::int64_t j = 0; j < n; ++j) ci[j] += aik * bk[j];
      }
  }

  // Z ≈ A⁺ by the iteration above; t1..t3 are scratch.
  void pseudo_inverse(const double* A, double* Z, double* t1, double* t2, double* t3) const {
    const std::int64_t m = m_;
    double col_max = 0.0, row_max = 0.0;
    for (std::int64_t i = 0; i < m; ++i) {
      double row = 0.0, col = 0.0;
      for (std::int64_t j = 0; j < m; ++j) {
        row += std::abs(A[i * m + j]);
        col += std::abs(A[j * m + i]);
      }
      row_max = std::max(row_max, row);
      col_max = std::max(col_max, col);
    }
    const double z0 = 1.0 / (col_max * row_max);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < m; ++j) Z[i * m + j] = z0 * A[j * m + i];
    // With X = AZ: Z ← ¼ Z (13I − X (15I − X (7I − X))).
    auto identity_minus = [m](double alpha, double* t) {
      for (std::int64_t i = 0; i < m * m; ++i) t[i] = -t[i];
      for (std::int64_t i = 0; i < m; ++i) t[i * m + i] += alpha;
    };
    for (std::int64_t it = 0; it < iters_; ++it) {
      matmul(A, Z, t1, m);  // X
      std::copy(t1, t1 + m * m, t2);
      identity_minus(7.0, t2);  // 7I − X
      matmul(t1, t2, t3, m);
      identity_minus(15.0, t3);  // 15I − X(7I − X)
      matmul(t1, t3, t2, m);
      identity_minus(13.0, t2);  // 13I − X(15I − X(7I − X))
      matmul(Z, t2, t3, m);
      for (std::int64_t i = 0; i < m * m; ++i) Z[i] = 0.25 * t3[i];
    }
  }

  void head(const Inputs& in, Tensor& out, std::int64_t b, std::int64_t h, int thread) {
    const Problem& p = p_;
    const std::int64_t m = m_, D = p.head_dim, Dv = p.value_dim, Lq = p.q_len, Lk = p.kv_len;
    const std::int64_t q_row0 = (b * p.heads + h) * Lq, kv_row0 = (b * p.kv_heads + p.kv_head_of(h)) * Lk;
    const float scale = static_cast<float>(p.scale);
    const Layout& L = layout_;
    float* base = floats_.data() + thread * L.per_thread;
    float *q_marks = base + L.q_marks, *k_marks = base + L.k_marks, *bv = base + L.bv, *w = base + L.w;
    float *row_max = base + L.row_max, *row_sum = base + L.row_sum, *scores = base + L.scores;
    float *x = base + L.x, *v = base + L.v;
    double* A = doubles_.data() + thread * 5 * m * m;
    double *Z = A + m * m, *t1 = Z + m * m, *t2 = t1 + m * m, *t3 = t2 + m * m;

    segment_means(in.q, q_row0, Lq, q_marks, x);
    segment_means(in.k, kv_row0, Lk, k_marks, x);

    // A = softmax(scale·Q̃ K̃ᵀ), rows in float64.
    for (std::int64_t r = 0; r < m; ++r) {
      double top = -std::numeric_limits<double>::infinity();
      for (std::int64_t c = 0; c < m; ++c) {
        double s = 0.0;
        for (std::int64_t d = 0; d < D; ++d) s += static_cast<double>(q_marks[r * D + d]) * k_marks[c * D + d];
        A[r * m + c] = p.scale * s;
        top = std::max(top, A[r * m + c]);
      }
      double sum = 0.0;
      for (std::int64_t c = 0; c < m; ++c) sum += (A[r * m + c] = std::exp(A[r * m + c] - top));
      for (std::int64_t c = 0; c < m; ++c) A[r * m + c] /= sum;
    }
    pseudo_inverse(A, Z, t1, t2, t3);

    // B·V = softmax(scale·Q̃ Kᵀ)·V in one pass over the keys, an online softmax per landmark row.
    std::fill(row_max, row_max + m, -std::numeric_limits<float>::infinity());
    std::fill(row_sum, row_sum + m, 0.0f);
    std::fill(bv, bv + m * Dv, 0.0f);
    for (std::int64_t j = 0; j < Lk; ++j) {
      load_row(in.k, (kv_row0 + j) * D, D, x);
      load_row(in.v, (kv_row0 + j) * Dv, Dv, v);
      for (std::int64_t r = 0; r < m; ++r) {
        const float s = scale * dot(q_marks + r * D, x, D);
        float* __restrict acc = bv + r * Dv;
        if (s > row_max[r]) {  // a new row maximum: rescale what is summed so far
          const float down = std::exp(row_max[r] - s);
          row_sum[r] *= down;
          for (std::int64_t c = 0; c < Dv; ++c) acc[c] *= down;
          row_max[r] = s;
        }
        const float e = std::exp(s - row_max[r]);
        row_sum[r] += e;
        for (std::int64_t c = 0; c < Dv; ++c) acc[c] += e * v[c];
      }
    }
    for (std::int64_t r = 0; r < m; ++r)
      for (std::int64_t c = 0; c < Dv; ++c) bv[r * Dv + c] /= row_sum[r];

    // W = A⁺·(B·V).
    for (std::int64_t r = 0; r < m; ++r) {
      float* __restrict wr = w + r * Dv;
      std::fill(wr, wr + Dv, 0.0f);
      for (std::int64_t k = 0; k < m; ++k) {
        const float zrk = static_cast<float>(Z[r * m + k]);
        const float* __restrict bk = bv + k * Dv;
        for (std::int64_t c = 0; c < Dv; ++c) wr[c] += zrk * bk[c];
      }
    }

    // out_i = softmax(scale·q_i K̃ᵀ)·W, written into `v` as a row buffer.
    for (std::int64_t i = 0; i < Lq; ++i) {
      load_row(in.q, (q_row0 + i) * D, D, x);
      float top = -std::numeric_limits<float>::infinity();
      for (std::int64_t r = 0; r < m; ++r) top = std::max(top, scores[r] = scale * dot(x, k_marks + r * D, D));
      float sum = 0.0f;
      for (std::int64_t r = 0; r < m; ++r) sum += (scores[r] = std::exp(scores[r] - top));
      std::fill(v, v + Dv, 0.0f);
      for (std::int64_t r = 0; r < m; ++r) {
        const float f = scores[r] / sum;
        const float* __restrict wr = w + r * Dv;
        for (std::int64_t c = 0; c < Dv; ++c) v[c] += f * wr[c];
      }
      store_row(out, (q_row0 + i) * Dv, Dv, v);
    }
  }

  Problem p_;
  std::int64_t m_, iters_;
  int threads_;
  Layout layout_;
  kernels::AlignedFloats floats_;
  std::vector<double> doubles_;
};

class Nystrom final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo m;
    m.name = "nystrom";
    m.family = Family::linear;
    m.summary =
        "Nyströmformer: softmax attention through m segment-mean landmarks and an iterative pseudo-inverse; non-causal "
        "(CPU, fp32/bf16)";
    m.reference = "Xiong et al., Nyströmformer: A Nyström-Based Algorithm for Approximating Self-Attention (2021)";
    m.params = {
        ParamSpec::integer("landmarks", 64, 1, 1024,
                           "landmarks m: segment means of Q and K (at most min(q_len, kv_len))"),
        ParamSpec::integer("pinv_iters", 6, 1, 100, "iterations of the pseudo-inverse of the m×m landmark kernel")};
    m.backends = {"cpu"};
    return m;
  }

  Support supports(const Problem& p, const Params& params, const Device& d) const override {
    if (Support s = Method::supports(p, params, d); !s) return s;
    if (Support s = kernels::linear_family_supports("nystrom", p, /*has_causal_form=*/false); !s) return s;
    if (p.causal())
      return Support::no(
          "nystrom is not causal: every landmark mixes queries and keys from the whole sequence, "
          "so a query would see later keys; use mask full, or a causal method such as linear or flash");
    const std::int64_t m = params.integer("landmarks");
    if (m > p.q_len || m > p.kv_len)
      return Support::no("landmarks (" + std::to_string(m) + ") must not exceed q_len (" + std::to_string(p.q_len) +
                         ") or kv_len (" + std::to_string(p.kv_len) +
                         "): each landmark is the mean of at least one token");
    return Support::yes();
  }

  // Per (batch, head): segment means (D per row), A (2·m²·D), its pseudo-inverse (4 m×m products per
  // iteration, 2·m³ each), B·V (2·m·Lk·(D + Dv)), A⁺·(B·V) (2·m²·Dv), F·W (2·Lq·m·(D + Dv)).
  double flops(const Problem& p, const Params& params) const override {
    const double m = static_cast<double>(params.integer("landmarks")),
                 iters = static_cast<double>(params.integer("pinv_iters"));
    const double D = static_cast<double>(p.head_dim), Dv = static_cast<double>(p.value_dim);
    const double Lq = static_cast<double>(p.q_len), Lk = static_cast<double>(p.kv_len);
    const double per_head = (Lq + Lk) * D + 2.0 * m * m * D + iters * 8.0 * m * m * m + 2.0 * m * Lk * (D + Dv) +
                            2.0 * m * m * Dv + 2.0 * Lq * m * (D + Dv);
    return static_cast<double>(p.batch * p.heads) * per_head;
  }
  double bytes(const Problem& p, const Params&) const override { return attention_bytes(p); }

  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device&) const override {
    return std::make_unique<NystromPlan>(p, params.integer("landmarks"), params.integer("pinv_iters"));
  }
};

ATTNBENCH_REGISTER_METHOD(Nystrom);

}  // namespace
}  // namespace attnbench
