// Shared pieces of the retrieval tasks: codebook, trial writer, decode, Wilson interval, common parameters.
#include "datasets/tasks/retrieval_common.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <numeric>
#include <stdexcept>

namespace attnbench::retrieval {

namespace {

double dot(const double* a, const double* b, std::int64_t n) {
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

double norm(const double* a, std::int64_t n) { return std::sqrt(dot(a, a, n)); }

}  // namespace

Codebook::Codebook(std::int64_t dim, std::vector<double> rows) : dim_(dim), rows_(std::move(rows)) {
  if (dim <= 0 || rows_.size() % static_cast<std::size_t>(dim) != 0)
    throw std::invalid_argument("codebook rows must be a whole number of dim-sized entries");
}

Codebook Codebook::random(std::int64_t entries, std::int64_t dim, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> rows(static_cast<std::size_t>(entries * dim));
  const double radius = std::sqrt(static_cast<double>(dim));
  std::vector<double> x(static_cast<std::size_t>(dim));
  for (std::int64_t e = 0; e < entries; ++e) {
    double* row = rows.data() + e * dim;
    for (int attempt = 0;; ++attempt) {
      if (attempt == 100000)
        throw std::runtime_error("cannot place " + std::to_string(entries) + " codebook entries of dimension " +
                                 std::to_string(dim) + " with |cos| <= 0.5 between them; use a smaller codebook");
      for (auto& xi : x) xi = rng.normal();
      if (e < dim) {
        // Gram-Schmidt against the earlier (orthonormal, scaled) rows, twice for rounding.
        for (int pass = 0; pass < 2; ++pass)
          for (std::int64_t j = 0; j < e; ++j) {
            const double* r = rows.data() + j * dim;
            const double c = dot(x.data(), r, dim) / static_cast<double>(dim);
            for (std::int64_t i = 0; i < dim; ++i) x[i] -= c * r[i];
          }
      }
      const double n = norm(x.data(), dim);
      if (n < 1e-6) continue;
      for (std::int64_t i = 0; i < dim; ++i) row[i] = x[i] * radius / n;
      if (e < dim) break;
      bool separated = true;
      for (std::int64_t j = 0; j < e && separated; ++j)
        separated = std::abs(dot(row, rows.data() + j * dim, dim)) <= kCodebookMaxCos * static_cast<double>(dim);
      if (separated) break;
    }
  }
  return Codebook(dim, std::move(rows));
}

std::vector<std::int64_t> decode_top(const Codebook& cb, const double* out, std::int64_t k, std::int64_t candidates) {
  const std::int64_t dim = cb.dim();
  const double out_norm = norm(out, dim);
  if (!(out_norm > 0) || !std::isfinite(out_norm)) return {};
  candidates = std::min(candidates, cb.entries());
  std::vector<double> cosine(static_cast<std::size_t>(candidates));
  for (std::int64_t c = 0; c < candidates; ++c)
    cosine[c] = dot(out, cb.entry(c), dim) / (out_norm * norm(cb.entry(c), dim));
  std::vector<std::int64_t> order(static_cast<std::size_t>(candidates));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  k = std::min(k, candidates);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](std::int64_t a, std::int64_t b) {
    return cosine[a] != cosine[b] ? cosine[a] > cosine[b] : a < b;
  });
  order.resize(static_cast<std::size_t>(k));
  return order;
}

std::vector<bool> trial_outcomes(const RetrievalInstance& inst, const Tensor& out) {
  const Problem& p = inst.problem;
  const std::int64_t dv = p.value_dim;
  if (out.shape() != std::array<std::int64_t, 4>{p.batch, p.heads, p.q_len, dv})
    throw std::invalid_argument("retrieval score: output shape does not match the problem");
  std::vector<bool> ok(static_cast<std::size_t>(inst.trials), true);
  std::vector<double> row(static_cast<std::size_t>(dv));
  for (std::int64_t t = 0; t < inst.trials; ++t)
    for (std::int64_t i = 0; i < p.q_len; ++i) {
      const Expectation& e = inst.expected[t][i];
      const std::int64_t base = (t * p.q_len + i) * dv;  // trial t is (b, h) = (t / heads, t % heads)
      for (std::int64_t d = 0; d < dv; ++d) row[d] = out.get(base + d);
      std::vector<std::int64_t> got =
          decode_top(inst.codebook, row.data(), static_cast<std::int64_t>(e.answers.size()), e.candidates);
      std::vector<std::int64_t> want = e.answers;
      std::sort(got.begin(), got.end());
      std::sort(want.begin(), want.end());
      if (got != want) ok[t] = false;
    }
  return ok;
}

Interval wilson_interval(std::int64_t successes, std::int64_t trials, double z) {
  if (trials <= 0) return {0.0, 1.0};
  const double n = static_cast<double>(trials), p = static_cast<double>(successes) / n, z2 = z * z;
  const double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z / (1 + z2 / n) * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

Metrics accuracy_metrics(const std::vector<bool>& outcomes) {
  const auto n = static_cast<std::int64_t>(outcomes.size());
  const auto k = static_cast<std::int64_t>(std::count(outcomes.begin(), outcomes.end(), true));
  const Interval ci = wilson_interval(k, n);
  return {{"accuracy", n ? static_cast<double>(k) / static_cast<double>(n) : 0.0},
          {"accuracy_ci_low", ci.low},
          {"accuracy_ci_high", ci.high},
          {"trials", static_cast<double>(n)}};
}

std::vector<MetricSpec> accuracy_metric_specs() {
  return {MetricSpec{"accuracy", "", true, "fraction of trials whose planted values were decoded from the output"},
          MetricSpec{"accuracy_ci_low", "", true, "lower end of the 95% Wilson interval of accuracy"},
          MetricSpec{"accuracy_ci_high", "", true, "upper end of the 95% Wilson interval of accuracy"},
          MetricSpec{"trials", "", true, "independent trials in the cell (samples)"}};
}

std::vector<ParamSpec> common_params(std::int64_t default_samples) {
  return {
      ParamSpec::integer("samples", default_samples, 1, 1 << 20,
                         "independent trials per cell, laid out over batch × heads (one method run per cell)"),
      ParamSpec::integer("heads", 1, 1, 1024,
                         "heads per sequence; each (sequence, head) is one trial, so heads must divide samples"),
      ParamSpec::integer("head_dim", 64, 32, 512, "query/key/value head dimension D"),
      ParamSpec::number(
          "signal", 0.8, 0.0, 1.0,
          "cosine between a needle's key and its query (calibrated: exact attention >= 99% on the default suites)"),
      ParamSpec::number(
          "sharpness", 4.0, 0.01, 64.0,
          "query norm in units of sqrt(D): a haystack logit is N(0, sharpness²), a needle's sharpness·signal·sqrt(D)"),
      ParamSpec::integer(
          "codebook", 1024, 2, 1 << 16,
          "value codebook entries (the decode's candidates; the first D are orthogonal); at most 16·head_dim")};
}

std::optional<std::string> check_common(const Params& p) {
  const std::int64_t samples = p.integer("samples"), heads = p.integer("heads"), dim = p.integer("head_dim");
  if (samples % heads != 0)
    return "heads (" + std::to_string(heads) + ") must divide samples (" + std::to_string(samples) +
           "): each (sequence, head) is one trial";
  if (p.integer("codebook") > kCodebookPerDim * dim)
    return "codebook (" + std::to_string(p.integer("codebook")) + ") must be at most 16·head_dim (" +
           std::to_string(kCodebookPerDim * dim) + ") so that its entries stay well separated";
  const std::int64_t seq_len = p.integer("seq_len");
  const double floats = static_cast<double>(samples) * static_cast<double>(seq_len) * 2.0 * static_cast<double>(dim);
  if (floats > static_cast<double>(kMaxKvFloats)) {
    const std::int64_t fit = kMaxKvFloats / (seq_len * 2 * dim);
    char gib[32];
    std::snprintf(gib, sizeof gib, "%.1f", floats * 4 / (1 << 30));
    return "keys and values of " + std::to_string(samples) + " samples × " + std::to_string(seq_len) + " tokens × " +
           std::to_string(dim) + " dims take " + gib +
           " GiB, over the 2 GiB limit of a retrieval cell; use samples <= " +
           std::to_string(std::max<std::int64_t>(fit, 0)) + " at this length (or a shorter seq_len)";
  }
  return std::nullopt;
}

Problem retrieval_problem(const Params& p, std::int64_t q_len) {
  Problem pr;
  pr.heads = p.integer("heads");
  pr.batch = p.integer("samples") / pr.heads;
  pr.kv_heads = pr.heads;
  pr.q_len = q_len;
  pr.kv_len = p.integer("seq_len");
  pr.head_dim = p.integer("head_dim");
  pr.value_dim = pr.head_dim;
  pr.scale = 1.0 / std::sqrt(static_cast<double>(pr.head_dim));
  pr.dtype = Dtype::f32;
  pr.cross = false;
  pr.mask = make_mask("causal", json::object(), pr.mask_shape());
  return pr;
}

std::unique_ptr<RetrievalInstance> new_instance(const Params& p, std::int64_t q_len, std::uint64_t seed) {
  auto inst = std::make_unique<RetrievalInstance>();
  inst->problem = retrieval_problem(p, q_len);
  const Problem& pr = inst->problem;
  inst->inputs = Inputs{Tensor(Dtype::f32, {pr.batch, pr.heads, pr.q_len, pr.head_dim}),
                        Tensor(Dtype::f32, {pr.batch, pr.kv_heads, pr.kv_len, pr.head_dim}),
                        Tensor(Dtype::f32, {pr.batch, pr.kv_heads, pr.kv_len, pr.value_dim})};
  inst->codebook = Codebook::random(p.integer("codebook"), pr.value_dim, derive_seed(seed, "codebook"));
  inst->trials = pr.batch * pr.heads;
  inst->expected.assign(static_cast<std::size_t>(inst->trials),
                        std::vector<Expectation>(static_cast<std::size_t>(q_len)));
  inst->needles.assign(static_cast<std::size_t>(inst->trials), {});
  return inst;
}

TrialWriter::TrialWriter(RetrievalInstance& inst, std::int64_t trial)
    : codebook_(inst.codebook), dim_(inst.problem.head_dim), kv_len_(inst.problem.kv_len), q_len_(inst.problem.q_len) {
  // kv_heads == heads, so trial t's rows start at t·len in both Q and K/V.
  q_ = inst.inputs.q.f32() + trial * q_len_ * dim_;
  k_ = inst.inputs.k.f32() + trial * kv_len_ * dim_;
  v_ = inst.inputs.v.f32() + trial * kv_len_ * dim_;
}

void TrialWriter::query(std::int64_t row, const std::vector<double>& unit, double sharpness) {
  const double r = sharpness * std::sqrt(static_cast<double>(dim_));
  for (std::int64_t d = 0; d < dim_; ++d) q_[row * dim_ + d] = static_cast<float>(r * unit[d]);
}

void TrialWriter::key_with_cosine(std::int64_t pos, const std::vector<double>& unit, double cos, Rng& rng) {
  std::vector<double> u;
  double n = 0;
  while (!(n > 1e-6)) {
    u = random_unit(rng, dim_);
    const double c = dot(u.data(), unit.data(), dim_);
    for (std::int64_t d = 0; d < dim_; ++d) u[d] -= c * unit[d];
    n = norm(u.data(), dim_);
  }
  const double r = std::sqrt(static_cast<double>(dim_)), sin = std::sqrt(std::max(0.0, 1 - cos * cos));
  for (std::int64_t d = 0; d < dim_; ++d) k_[pos * dim_ + d] = static_cast<float>(r * (cos * unit[d] + sin * u[d] / n));
}

void TrialWriter::key_noise(std::int64_t pos, Rng& rng) {
  for (std::int64_t d = 0; d < dim_; ++d) k_[pos * dim_ + d] = static_cast<float>(rng.normal());
}

void TrialWriter::value_noise(std::int64_t pos, Rng& rng) {
  for (std::int64_t d = 0; d < dim_; ++d) v_[pos * dim_ + d] = static_cast<float>(rng.normal());
}

void TrialWriter::value_entry(std::int64_t pos, std::int64_t entry) {
  const double* e = codebook_.entry(entry);
  for (std::int64_t d = 0; d < dim_; ++d) v_[pos * dim_ + d] = static_cast<float>(e[d]);
}

void TrialWriter::key_copy(std::int64_t pos, std::int64_t from) {
  std::copy(k_ + from * dim_, k_ + (from + 1) * dim_, k_ + pos * dim_);
}

void TrialWriter::value_copy(std::int64_t pos, std::int64_t from) {
  std::copy(v_ + from * dim_, v_ + (from + 1) * dim_, v_ + pos * dim_);
}

std::vector<double> random_unit(Rng& rng, std::int64_t n) {
  std::vector<double> x(static_cast<std::size_t>(n));
  double s = 0;
  while (!(s > 1e-12)) {
    for (auto& xi : x) xi = rng.normal();
    s = norm(x.data(), n);
  }
  for (auto& xi : x) xi /= s;
  return x;
}

std::vector<double> unit_of(const double* x, std::int64_t n) {
  const double s = norm(x, n);
  std::vector<double> u(x, x + n);
  for (auto& ui : u) ui /= s;
  return u;
}

std::vector<std::int64_t> distinct(Rng& rng, std::int64_t k, std::int64_t n) {
  std::vector<std::int64_t> out;
  if (2 * k > n) {  // dense: a partial Fisher-Yates shuffle
    std::vector<std::int64_t> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), std::int64_t{0});
    for (std::int64_t i = 0; i < k; ++i) std::swap(all[i], all[i + static_cast<std::int64_t>(rng.below(n - i))]);
    all.resize(static_cast<std::size_t>(k));
    return all;
  }
  while (static_cast<std::int64_t>(out.size()) < k) {
    const auto x = static_cast<std::int64_t>(rng.below(n));
    if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
  }
  return out;
}

std::int64_t other_than(Rng& rng, std::int64_t n, std::int64_t excluded) {
  const auto x = static_cast<std::int64_t>(rng.below(n - 1));
  return x >= excluded ? x + 1 : x;
}

Metrics RetrievalTask::score(const TaskInstance& inst, const Tensor& out, const Tensor*) const {
  const auto* r = dynamic_cast<const RetrievalInstance*>(&inst);
  if (!r) throw std::invalid_argument(info().name + ": score() was given an instance another task built");
  return accuracy_metrics(trial_outcomes(*r, out));
}

}  // namespace attnbench::retrieval
