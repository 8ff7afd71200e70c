// The `structured` input generator: queries and keys shaped like a trained model's (sink, drift, outliers, RoPE).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "attnbench/rng.hpp"
#include "datasets/generators.hpp"

namespace attnbench::datasets {
namespace {

// The outlier channels of kv head g: `count` distinct channels drawn by a partial Fisher-Yates shuffle.
std::vector<std::int64_t> outlier_channels(std::uint64_t seed, std::int64_t g, std::int64_t dim, std::int64_t count) {
  std::vector<std::int64_t> channels(static_cast<std::size_t>(dim));
  std::iota(channels.begin(), channels.end(), 0);
  Rng rng(derive_seed(seed, "outliers/" + std::to_string(g)));
  const std::int64_t n = std::min(count, dim);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto j = i + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(dim - i)));
    std::swap(channels[static_cast<std::size_t>(i)], channels[static_cast<std::size_t>(j)]);
  }
  channels.resize(static_cast<std::size_t>(n));
  return channels;
}

// Fills every (b, h) row sequence of `t` with a stationary AR(1) process of unit variance per channel:
// x_0 ~ N(0, I), x_t = ρ x_{t−1} + √(1 − ρ²) ε_t. One stream per (b, h), so threads do not matter.
// Row 0 is multiplied by `first_row_scale` (the sink) without changing the process that follows;
// channels in outliers(h) are multiplied by outlier_scale.
template <class Outliers>
void fill_ar1(Tensor& t, std::uint64_t seed, double rho, double first_row_scale, double outlier_scale,
              Outliers&& outliers) {
  const auto [batch, heads, len, dim] = t.shape();
  const double innovation = std::sqrt(std::max(0.0, 1.0 - rho * rho));
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t h = 0; h < heads; ++h) {
      std::string key("b");  // appended, not "b" + ...: g++ 12 warns falsely (-Wrestrict) on the latter
      key += std::to_string(b);
      key += 'h';
      key += std::to_string(h);
      Rng rng(derive_seed(seed, key));
      std::vector<double> x(static_cast<std::size_t>(dim)), gain(static_cast<std::size_t>(dim), 1.0);
      for (const std::int64_t c : outliers(h)) gain[static_cast<std::size_t>(c)] = outlier_scale;
      for (auto& xi : x) xi = rng.normal();
      const std::int64_t base = ((b * heads + h) * len) * dim;
      for (std::int64_t i = 0; i < len; ++i) {
        if (i > 0)
          for (auto& xi : x) xi = rho * xi + innovation * rng.normal();
        const double row_scale = i == 0 ? first_row_scale : 1.0;
        for (std::int64_t c = 0; c < dim; ++c)
          t.set(base + i * dim + c, row_scale * gain[static_cast<std::size_t>(c)] * x[static_cast<std::size_t>(c)]);
      }
    }
}

}  // namespace

void apply_rope(Tensor& t, double base, std::int64_t position_offset) {
  if (base <= 0) return;
  const auto [batch, heads, len, dim] = t.shape();
  const std::int64_t half = dim / 2;
  std::vector<double> inv_freq(static_cast<std::size_t>(half));
  for (std::int64_t i = 0; i < half; ++i)
    inv_freq[static_cast<std::size_t>(i)] = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(dim));
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t bh = 0; bh < batch * heads; ++bh)
    for (std::int64_t i = 0; i < len; ++i) {
      const std::int64_t row = (bh * len + i) * dim;
      const double pos = static_cast<double>(position_offset + i);
      for (std::int64_t c = 0; c < half; ++c) {
        const double angle = pos * inv_freq[static_cast<std::size_t>(c)];
        const double cs = std::cos(angle), sn = std::sin(angle);
        const double x = t.get(row + c), y = t.get(row + c + half);
        t.set(row + c, x * cs - y * sn);
        t.set(row + c + half, y * cs + x * sn);
      }
    }
}

Inputs structured_inputs(const Problem& p, std::uint64_t seed, const StructuredSpec& spec) {
  if (!(spec.drift >= 0 && spec.drift < 1)) throw std::invalid_argument("structured inputs: drift must be in [0, 1)");
  if (!(spec.sink_scale > 0)) throw std::invalid_argument("structured inputs: sink_scale must be positive");
  if (spec.outliers < 0) throw std::invalid_argument("structured inputs: outliers must not be negative");
  // bf16 and fp16 are generated in fp32 and rounded once, after RoPE; fp32 and fp64 are generated in place.
  const Dtype work = p.dtype == Dtype::bf16 || p.dtype == Dtype::f16 ? Dtype::f32 : p.dtype;
  Tensor q(work, {p.batch, p.heads, p.q_len, p.head_dim});
  Tensor k(work, {p.batch, p.kv_heads, p.kv_len, p.head_dim});
  Tensor v(work, {p.batch, p.kv_heads, p.kv_len, p.value_dim});
  const std::uint64_t channel_seed = derive_seed(seed, "channels");
  auto kv_outliers = [&](std::int64_t g) { return outlier_channels(channel_seed, g, p.head_dim, spec.outliers); };
  auto q_outliers = [&](std::int64_t h) { return kv_outliers(p.kv_head_of(h)); };
  auto none = [](std::int64_t) { return std::vector<std::int64_t>{}; };
  fill_ar1(q, derive_seed(seed, "q"), spec.drift, 1.0, spec.outlier_scale, q_outliers);
  fill_ar1(k, derive_seed(seed, "k"), spec.drift, spec.sink_scale, spec.outlier_scale, kv_outliers);
  fill_ar1(v, derive_seed(seed, "v"), spec.drift, 1.0, 1.0, none);
  // Keys sit at 0..kv_len−1; queries end at kv_len (bottom-right, as masks align them).
  apply_rope(q, spec.rope_base, p.kv_len - p.q_len);
  apply_rope(k, spec.rope_base, 0);

  if (work == p.dtype) return Inputs{std::move(q), std::move(k), std::move(v)};
  auto rounded = [&](const Tensor& src) {
    Tensor dst(p.dtype, src.shape());
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < src.numel(); ++i) dst.set(i, src.get(i));
    return dst;
  };
  return Inputs{rounded(q), rounded(k), rounded(v)};
}

}  // namespace attnbench::datasets
