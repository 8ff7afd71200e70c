// Tests of the nystrom method (Nyströmformer): equal to its own float64 form F·A⁻¹·(B·V) with an exact
// inverse once the pseudo-inverse iteration has converged; exact softmax attention when every token is a
// landmark; error against exact attention falling as landmarks grow; its refusals.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "datasets/generators.hpp"
#include "kernels/cpu/linear_forms.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using attnbench::testing::Shape;

namespace {

using Matrix = std::vector<std::vector<double>>;

// Landmark r: the mean of rows [r·len/m, (r+1)·len/m) of one head.
Matrix segment_means(const Tensor& t, std::int64_t row0, std::int64_t len, std::int64_t dim, std::int64_t m) {
  Matrix marks(static_cast<std::size_t>(m), std::vector<double>(static_cast<std::size_t>(dim), 0.0));
  for (std::int64_t r = 0; r < m; ++r) {
    const std::int64_t s0 = r * len / m, s1 = (r + 1) * len / m;
    for (std::int64_t s = s0; s < s1; ++s)
      for (std::int64_t d = 0; d < dim; ++d) marks[r][d] += t.get((row0 + s) * dim + d) / static_cast<double>(s1 - s0);
  }
  return marks;
}

// softmax(scale·a bᵀ) row by row.
Matrix softmax_scores(const Matrix& a, const Matrix& b, double scale) {
  Matrix s(a.size(), std::vector<double>(b.size()));
  for (std::size_t i = 0; i < a.size(); ++i) {
    double top = -INFINITY, sum = 0;
    for (std::size_t j = 0; j < b.size(); ++j) {
      double dot = 0;
      for (std::size_t d = 0; d < a[i].size(); ++d) dot += a[i][d] * b[j][d];
      top = std::max(top, s[i][j] = scale * dot);
    }
    for (double& x : s[i]) sum += (x = std::exp(x - top));
    for (double& x : s[i]) x /= sum;
  }
  return s;
}

// Gauss-Jordan with partial pivoting: a softmax landmark kernel is invertible for generic inputs, so its
// pseudo-inverse is its inverse.
Matrix inverse(Matrix a) {
  const std::size_t n = a.size();
  Matrix inv(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) inv[i][i] = 1.0;
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t pivot = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    std::swap(a[c], a[pivot]);
    std::swap(inv[c], inv[pivot]);
    const double diag = a[c][c];
    for (std::size_t j = 0; j < n; ++j) a[c][j] /= diag, inv[c][j] /= diag;
    for (std::size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r][c];
      for (std::size_t j = 0; j < n; ++j) a[r][j] -= f * a[c][j], inv[r][j] -= f * inv[c][j];
    }
  }
  return inv;
}

Matrix multiply(const Matrix& a, const Matrix& b) {
  Matrix c(a.size(), std::vector<double>(b[0].size(), 0.0));
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t k = 0; k < b.size(); ++k)
      for (std::size_t j = 0; j < b[0].size(); ++j) c[i][j] += a[i][k] * b[k][j];
  return c;
}

Matrix rows(const Tensor& t, std::int64_t row0, std::int64_t len, std::int64_t dim) {
  Matrix r(static_cast<std::size_t>(len), std::vector<double>(static_cast<std::size_t>(dim)));
  for (std::int64_t i = 0; i < len; ++i)
    for (std::int64_t d = 0; d < dim; ++d) r[i][d] = t.get((row0 + i) * dim + d);
  return r;
}

// The Nyström form F·A⁻¹·(B·V) in float64 with an exact inverse.
Tensor nystrom_form(const Problem& p, const Inputs& in, std::int64_t m) {
  Tensor out(Dtype::f64, {p.batch, p.heads, p.q_len, p.value_dim});
  for (std::int64_t b = 0; b < p.batch; ++b)
    for (std::int64_t h = 0; h < p.heads; ++h) {
      const std::int64_t q0 = (b * p.heads + h) * p.q_len, k0 = (b * p.kv_heads + p.kv_head_of(h)) * p.kv_len;
      const Matrix q = rows(in.q, q0, p.q_len, p.head_dim), k = rows(in.k, k0, p.kv_len, p.head_dim);
      const Matrix v = rows(in.v, k0, p.kv_len, p.value_dim);
      const Matrix qm = segment_means(in.q, q0, p.q_len, p.head_dim, m),
                   km = segment_means(in.k, k0, p.kv_len, p.head_dim, m);
      const Matrix o = multiply(softmax_scores(q, km, p.scale), multiply(inverse(softmax_scores(qm, km, p.scale)),
                                                                         multiply(softmax_scores(qm, k, p.scale), v)));
      for (std::int64_t i = 0; i < p.q_len; ++i)
        for (std::int64_t c = 0; c < p.value_dim; ++c) out.set((q0 + i) * p.value_dim + c, o[i][c]);
    }
  return out;
}

}  // namespace

TEST_CASE("nystrom equals its float64 form with an exact inverse once the iteration converges", "[nystrom][methods]") {
  struct Case {
    Shape shape;
    std::int64_t landmarks;
  };
  const std::vector<Case> cases = {
      {{1, 1, 1, 1, 1, 16, 16}, 1},      // a single token
      {{2, 2, 2, 50, 50, 32, 32}, 8},    // segments of 6 and 7 tokens
      {{1, 4, 2, 64, 64, 16, 24}, 16},   // GQA, value dim differs
      {{1, 2, 1, 37, 100, 32, 32}, 10},  // cross attention, Lq < Lk
      {{1, 2, 2, 100, 37, 32, 16}, 37},  // cross attention, Lq > Lk, every key a landmark
  };
  std::uint64_t seed = 41;
  for (const Case& c : cases) {
    const Problem p = testing::make_problem(c.shape, "full");
    INFO(p.describe() << " landmarks " << c.landmarks);
    const Inputs in = datasets::gaussian_inputs(p, seed++);
    const Tensor ref = nystrom_form(p, in, c.landmarks);
    const Tensor out = testing::run_method("nystrom", p, in, {{"landmarks", c.landmarks}, {"pinv_iters", 40}});
    const double err = testing::relative_l2(out, ref);
    INFO("relative L2 error " << err);
    CHECK(err <= 1e-4);
  }
}

TEST_CASE("nystrom with every token a landmark approaches exact attention", "[nystrom][methods]") {
  const Problem p = testing::make_problem({1, 2, 2, 32, 32, 16, 16}, "full");
  const Inputs in = datasets::gaussian_inputs(p, 12);
  const Tensor exact = testing::run_method("reference", p, in);
  double previous = INFINITY;
  for (const std::int64_t iters : {1, 6, 40}) {
    const Tensor out = testing::run_method("nystrom", p, in, {{"landmarks", 32}, {"pinv_iters", iters}});
    const double err = testing::relative_l2(out, exact);
    INFO("pinv_iters " << iters << ": relative L2 error " << err);
    CHECK(err < previous);
    previous = err;
  }
  CHECK(previous < 1e-3);
}

TEST_CASE("nystrom error against exact attention falls as landmarks grow", "[nystrom][methods]") {
  // With the paper's 6 pseudo-inverse iterations. (Run to convergence, the exact inverse of an
  // ill-conditioned landmark kernel amplifies the approximation error for m < L on i.i.d. inputs; the
  // truncated iteration acts as a regularised pseudo-inverse, which is what the paper relies on.)
  const Problem p = testing::make_problem({1, 2, 2, 64, 64, 16, 16}, "full");
  const std::vector<std::int64_t> landmarks = {4, 16, 32, 64};
  std::vector<double> mean_error;
  for (const std::int64_t m : landmarks) {
    double sum = 0;
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
      Inputs in = datasets::gaussian_inputs(p, 300 + seed);
      testing::scale_tensor(in.q, 0.5);  // a softmax that is not too peaky
      testing::scale_tensor(in.k, 0.5);
      const Tensor exact = testing::run_method("reference", p, in);
      sum += testing::relative_l2(testing::run_method("nystrom", p, in, {{"landmarks", m}}), exact);
    }
    mean_error.push_back(sum / 5);
    INFO("landmarks " << m << ": mean relative L2 error " << mean_error.back());
    if (mean_error.size() > 1) CHECK(mean_error.back() < mean_error[mean_error.size() - 2]);
  }
  CHECK(mean_error.back() * 4 < mean_error.front());
}

TEST_CASE("nystrom runs bf16 inputs as the fp32 values they hold", "[nystrom][methods]") {
  const Problem pb = testing::make_problem({1, 2, 2, 60, 60, 32, 32}, "full", Dtype::bf16);
  const Problem pf = testing::make_problem({1, 2, 2, 60, 60, 32, 32}, "full");
  const Inputs in_b = datasets::gaussian_inputs(pb, 9);
  const Inputs in_f{testing::to_f32(in_b.q), testing::to_f32(in_b.k), testing::to_f32(in_b.v)};
  const Tensor out_b = testing::run_method("nystrom", pb, in_b, {{"landmarks", 12}});
  const Tensor out_f = testing::run_method("nystrom", pf, in_f, {{"landmarks", 12}});
  REQUIRE(out_b.dtype() == Dtype::bf16);
  CHECK(testing::relative_l2(out_b, out_f) <= 1e-2);
}

TEST_CASE("nystrom declares itself, counts its FLOPs and refuses what it cannot compute", "[nystrom][methods]") {
  const Method& m = testing::method_named("nystrom");
  const MethodInfo info = m.info();
  CHECK(info.family == Family::linear);
  REQUIRE(info.params.size() == 2);
  CHECK(info.params[0].name == "landmarks");
  CHECK(info.params[0].default_value == 64);
  CHECK(info.params[1].name == "pinv_iters");
  CHECK(info.params[1].default_value == 6);
  CHECK(info.params[0].check(0).has_value());
  CHECK(info.params[1].check(0).has_value());
  CHECK(info.params[1].check(101).has_value());

  const Params params = complete_params(info.params, json::object());
  const Problem p = testing::make_problem({1, 2, 2, 256, 256, 64, 64}, "full");
  const double per_head = 512.0 * 64 + 2.0 * 64 * 64 * 64 + 6.0 * 8 * 64 * 64 * 64 + 2.0 * 64 * 256 * 128 +
                          2.0 * 64 * 64 * 64 + 2.0 * 256 * 64 * 128;
  CHECK(m.flops(p, params) == Approx(2 * per_head));
  CHECK(m.supports(p, params, Device{}));

  const Support causal = m.supports(testing::make_problem({1, 2, 2, 256, 256, 64, 64}, "causal"), params, Device{});
  CHECK_FALSE(causal);
  CHECK_THAT(causal.reason, Catch::Contains("not causal"));
  const Support short_q = m.supports(testing::make_problem({1, 2, 2, 32, 256, 64, 64}, "full"), params, Device{});
  CHECK_FALSE(short_q);
  CHECK_THAT(short_q.reason, Catch::Contains("landmarks (64) must not exceed q_len (32)"));
  CHECK_FALSE(m.supports(testing::make_problem({1, 2, 2, 256, 48, 64, 64}, "full"), params, Device{}));
  Problem band = testing::make_problem({1, 2, 2, 128, 128, 64, 64}, "full");
  band.mask = std::make_shared<const testing::BandMask>(band.mask_shape());
  const Support banded = m.supports(band, params, Device{});
  CHECK_FALSE(banded);
  CHECK_THAT(banded.reason, Catch::Contains("'band'"));
  CHECK_FALSE(m.supports(testing::make_problem({1, 1, 1, 128, 128, 64, 64}, "full", Dtype::f64), params, Device{}));
  CHECK_FALSE(m.supports(p, params, Device{Device::Kind::cuda, 0}));
}
