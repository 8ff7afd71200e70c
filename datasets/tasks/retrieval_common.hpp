// Shared pieces of the retrieval tasks (niah, ruler): the value codebook, the planted needles, the decode
// of an attention output back to codebook entries, and accuracy with its Wilson interval (docs/retrieval.md).
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnbench/rng.hpp"
#include "attnbench/task.hpp"

namespace attnbench::retrieval {

// Codebook entries beyond the first head_dim ones (which are exactly orthogonal) keep |cos| <= this to
// every other entry, so that a decode is never confused by two near-identical values.
inline constexpr double kCodebookMaxCos = 0.5;
// Codebook entries per dimension that rejection sampling still places quickly at kCodebookMaxCos.
inline constexpr std::int64_t kCodebookPerDim = 16;
// K and V of all trials together, in floats: 2^29 fp32 values = 2 GiB.
inline constexpr std::int64_t kMaxKvFloats = std::int64_t{1} << 29;

// C value vectors of dimension dim, each of norm sqrt(dim) (the norm of an N(0, I) vector on average).
class Codebook {
 public:
  Codebook() = default;
  // Explicit rows (entries × dim, row-major); their norms are kept as given.
  Codebook(std::int64_t dim, std::vector<double> rows);
  // The first min(entries, dim) rows are a random orthonormal set scaled to sqrt(dim); each later row is
  // an N(0, I) direction scaled to sqrt(dim), redrawn until |cos| <= kCodebookMaxCos with every earlier row.
  static Codebook random(std::int64_t entries, std::int64_t dim, std::uint64_t seed);

  std::int64_t entries() const { return dim_ ? static_cast<std::int64_t>(rows_.size()) / dim_ : 0; }
  std::int64_t dim() const { return dim_; }
  const double* entry(std::int64_t i) const { return rows_.data() + i * dim_; }

 private:
  std::int64_t dim_ = 0;
  std::vector<double> rows_;
};

// What one query row must decode to: the set `answers` must be exactly the |answers| entries among the
// first `candidates` codebook rows with the highest cosine to the row's output.
struct Expectation {
  std::vector<std::int64_t> answers;
  std::int64_t candidates = 0;
};

// A retrieval task instance: trial t is (batch t / heads, head t % heads); query row i of a trial is the
// i-th of the last q_len tokens. A trial is retrieved when every one of its rows decodes right.
struct RetrievalInstance : TaskInstance {
  Codebook codebook;
  std::int64_t trials = 0;
  std::vector<std::vector<Expectation>> expected;  // [trial][query row]
  std::vector<std::vector<std::int64_t>> needles;  // [trial]: key positions of the planted needles
};

// The `k` entries among the first `candidates` with the highest cosine to `out` (dim values), best first,
// ties to the lower index. Empty when `out` is zero or not finite: nothing is retrieved from it.
std::vector<std::int64_t> decode_top(const Codebook& cb, const double* out, std::int64_t k, std::int64_t candidates);

// Per trial, whether it was retrieved from the method's output O [batch, heads, q_len, value_dim].
std::vector<bool> trial_outcomes(const RetrievalInstance& inst, const Tensor& out);

// The 95% Wilson score interval of a binomial proportion (z = 1.96); [0, 1] for no trials.
struct Interval {
  double low = 0, high = 1;
};
Interval wilson_interval(std::int64_t successes, std::int64_t trials, double z = 1.959963984540054);

// accuracy, accuracy_ci_low, accuracy_ci_high, trials.
Metrics accuracy_metrics(const std::vector<bool>& outcomes);
std::vector<MetricSpec> accuracy_metric_specs();

// Parameters every retrieval task declares: samples, heads, head_dim, signal, sharpness, codebook.
std::vector<ParamSpec> common_params(std::int64_t default_samples);
// Refusals common to the retrieval tasks: heads must divide samples, the codebook must fit its
// dimension, and K/V must stay under kMaxKvFloats.
std::optional<std::string> check_common(const Params& p);
// batch = samples / heads, q_len queries at the end of a self-attention sequence of seq_len tokens,
// causal (bottom-right, so every query sees the whole context), fp32, scale 1/sqrt(head_dim).
Problem retrieval_problem(const Params& p, std::int64_t q_len);
// An instance with its problem, zeroed inputs, the codebook (child seed "codebook") and per-trial slots.
std::unique_ptr<RetrievalInstance> new_instance(const Params& p, std::int64_t q_len, std::uint64_t seed);

// Writes one trial's rows of Q, K, V (all in the same head_dim). Keys and queries are built from unit
// directions: a query is sharpness·sqrt(D)·q̂, so with scale 1/sqrt(D) a key k scores sharpness·(q̂·k).
class TrialWriter {
 public:
  TrialWriter(RetrievalInstance& inst, std::int64_t trial);
  std::int64_t dim() const { return dim_; }
  std::int64_t kv_len() const { return kv_len_; }
  std::int64_t context() const { return kv_len_ - q_len_; }  // positions before the first query token

  void query(std::int64_t row, const std::vector<double>& unit, double sharpness);
  // A key of norm sqrt(D) whose cosine with `unit` is exactly `cos` (its other part a random direction
  // orthogonal to `unit`); scored sharpness·cos·sqrt(D) by a query along `unit`.
  void key_with_cosine(std::int64_t pos, const std::vector<double>& unit, double cos, Rng& rng);
  void key_noise(std::int64_t pos, Rng& rng);    // N(0, I)
  void value_noise(std::int64_t pos, Rng& rng);  // N(0, I)
  void value_entry(std::int64_t pos, std::int64_t entry);
  void key_copy(std::int64_t pos, std::int64_t from);
  void value_copy(std::int64_t pos, std::int64_t from);

 private:
  const Codebook& codebook_;
  float *q_, *k_, *v_;
  std::int64_t dim_, kv_len_, q_len_;
};

std::vector<double> random_unit(Rng& rng, std::int64_t n);
std::vector<double> unit_of(const double* x, std::int64_t n);
// `k` distinct integers of [0, n) in the order drawn (k small against n, or k <= n in general).
std::vector<std::int64_t> distinct(Rng& rng, std::int64_t k, std::int64_t n);
// Uniform in [0, n) except `excluded` (n >= 2).
std::int64_t other_than(Rng& rng, std::int64_t n, std::int64_t excluded);

// Runs fill(trial, rng) for every trial, in parallel; trial t draws from its own stream (child seed
// "trial<t>"), so inputs do not depend on the thread count.
template <class Fill>
void for_each_trial(std::int64_t trials, std::uint64_t seed, Fill&& fill) {
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t t = 0; t < trials; ++t) {
    Rng rng(derive_seed(seed, "trial" + std::to_string(t)));
    fill(t, rng);
  }
}

// The score of every retrieval task: accuracy over trials with its 95% Wilson interval.
class RetrievalTask : public Task {
 public:
  Metrics score(const TaskInstance& inst, const Tensor& out, const Tensor*) const override;
};

}  // namespace attnbench::retrieval
