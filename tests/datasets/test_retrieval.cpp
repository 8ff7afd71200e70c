// Tests of the retrieval tasks niah and ruler: the decode and the Wilson interval by hand, determinism,
// a hand-checked tiny instance per task, exact attention's accuracy, sliding_window's window, refusals.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "attnbench/task.hpp"
#include "datasets/tasks/retrieval_common.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using namespace attnbench::retrieval;
using attnbench::testing::run_method;

namespace {

const Task& task_named(const std::string& name) {
  const Task* t = TaskRegistry::instance().find(name);
  REQUIRE(t != nullptr);
  return *t;
}

Params params_of(const std::string& task, const json& given) {
  return complete_params(task_named(task).info().params, given);
}

std::unique_ptr<RetrievalInstance> build(const std::string& task, const json& given, std::uint64_t seed) {
  const Params p = params_of(task, given);
  const auto refusal = task_named(task).check(p);
  INFO(given.dump() << ": " << refusal.value_or(""));
  REQUIRE(!refusal);
  auto inst = task_named(task).make(p, seed);
  auto* r = dynamic_cast<RetrievalInstance*>(inst.get());
  REQUIRE(r != nullptr);
  inst.release();
  return std::unique_ptr<RetrievalInstance>(r);
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

// Plain float64 softmax attention of every query row over the keys it may see (bottom-right causal):
// the hand computation the decode of a tiny instance is checked on.
Tensor exact_attention(const RetrievalInstance& r) {
  const Problem& p = r.problem;
  Tensor out(Dtype::f64, {p.batch, p.heads, p.q_len, p.value_dim});
  const std::int64_t D = p.head_dim, L = p.kv_len;
  for (std::int64_t t = 0; t < r.trials; ++t)
    for (std::int64_t i = 0; i < p.q_len; ++i) {
      const std::int64_t last = i + L - p.q_len;
      std::vector<double> logit(static_cast<std::size_t>(last + 1));
      double m = -1e300;
      for (std::int64_t k = 0; k <= last; ++k) {
        double s = 0;
        for (std::int64_t d = 0; d < D; ++d)
          s += r.inputs.q.get((t * p.q_len + i) * D + d) * r.inputs.k.get((t * L + k) * D + d);
        logit[k] = s * p.scale;
        m = std::max(m, logit[k]);
      }
      double z = 0;
      for (auto& l : logit) z += (l = std::exp(l - m));
      for (std::int64_t d = 0; d < D; ++d) {
        double o = 0;
        for (std::int64_t k = 0; k <= last; ++k) o += logit[k] / z * r.inputs.v.get((t * L + k) * D + d);
        out.set((t * p.q_len + i) * D + d, o);
      }
    }
  return out;
}

std::vector<double> row_of(const Tensor& t, std::int64_t row, std::int64_t dim) {
  std::vector<double> x(static_cast<std::size_t>(dim));
  for (std::int64_t d = 0; d < dim; ++d) x[d] = t.get(row * dim + d);
  return x;
}

double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// Whether V's row `pos` of trial t is codebook entry `e`.
bool value_is_entry(const RetrievalInstance& r, std::int64_t t, std::int64_t pos, std::int64_t e) {
  const std::int64_t D = r.problem.value_dim;
  const std::vector<double> v = row_of(r.inputs.v, t * r.problem.kv_len + pos, D);
  for (std::int64_t d = 0; d < D; ++d)
    if (std::abs(v[d] - r.codebook.entry(e)[d]) > 1e-5) return false;
  return true;
}

double key_query_cosine(const RetrievalInstance& r, std::int64_t t, std::int64_t row, std::int64_t pos) {
  const std::int64_t D = r.problem.head_dim;
  return cosine(row_of(r.inputs.q, t * r.problem.q_len + row, D), row_of(r.inputs.k, t * r.problem.kv_len + pos, D));
}

double fraction(const std::vector<bool>& v) {
  return static_cast<double>(std::count(v.begin(), v.end(), true)) / static_cast<double>(v.size());
}

const std::vector<json> kRulerVariants = {
    {{"variant", "single"}, {"haystack", "noise"}},
    {{"variant", "single"}, {"haystack", "repeat"}},
    {{"variant", "single"}, {"haystack", "needles"}},
    {{"variant", "multikey"}},
    {{"variant", "multivalue"}},
    {{"variant", "multiquery"}},
    {{"variant", "vt"}},
    {{"variant", "cwe"}},
    {{"variant", "fwe"}},
};

json with(json base, const json& more) {
  for (const auto& [k, v] : more.items()) base[k] = v;
  return base;
}

}  // namespace

TEST_CASE("the Wilson interval matches hand values", "[retrieval]") {
  // Published 95% Wilson intervals: 0/10 -> [0, 0.2775], 5/10 -> [0.2366, 0.7634], 10/10 -> [0.7225, 1].
  const Interval none = wilson_interval(0, 10), half = wilson_interval(5, 10), all = wilson_interval(10, 10);
  CHECK(none.low == 0.0);
  CHECK(none.high == Approx(0.2775328).epsilon(1e-6));
  CHECK(half.low == Approx(0.2365931).epsilon(1e-6));
  CHECK(half.high == Approx(0.7634069).epsilon(1e-6));
  CHECK(all.low == Approx(0.7224672).epsilon(1e-6));
  CHECK(all.high == Approx(1.0).epsilon(1e-12));
  const Interval empty = wilson_interval(0, 0);
  CHECK(empty.low == 0.0);
  CHECK(empty.high == 1.0);

  const Metrics m = accuracy_metrics({true, false, true, true, false, true, false, true, false, false});
  REQUIRE(m.size() == 4);
  CHECK(m[0].first == "accuracy");
  CHECK(m[0].second == 0.5);
  CHECK(m[1].second == Approx(0.2365931).epsilon(1e-6));
  CHECK(m[2].second == Approx(0.7634069).epsilon(1e-6));
  CHECK(m[3].first == "trials");
  CHECK(m[3].second == 10);
}

TEST_CASE("the decode picks the codebook entries nearest by cosine (hand case)", "[retrieval]") {
  // Entries e0 = (1, 0), e1 = (0, 1), e2 = (-1, 0), e3 = (3, 4) (norm 5; cosine ignores norms).
  const Codebook cb(2, {1, 0, 0, 1, -1, 0, 3, 4});
  const double out[2] = {0.9, 0.2};  // cos: e0 0.976, e1 0.217, e2 -0.976, e3 (2.7 + 0.8)/(5·0.922) = 0.759
  CHECK(decode_top(cb, out, 1, 4) == std::vector<std::int64_t>{0});
  CHECK(decode_top(cb, out, 2, 4) == std::vector<std::int64_t>{0, 3});
  CHECK(decode_top(cb, out, 2, 3) == std::vector<std::int64_t>{0, 1});  // e3 is no candidate
  const double toward_e3[2] = {0.5, 0.9};  // cos: e0 0.486, e1 0.874, e3 (1.5 + 3.6)/(5·1.030) = 0.990
  CHECK(decode_top(cb, toward_e3, 1, 4) == std::vector<std::int64_t>{3});
  const double zero[2] = {0, 0};
  CHECK(decode_top(cb, zero, 1, 4).empty());

  // Two trials of one query each: the first wants e0, the second e1; both outputs point at e0.
  RetrievalInstance r;
  r.problem = testing::make_problem({2, 1, 1, 1, 4, 2, 2}, "causal");
  r.codebook = cb;
  r.trials = 2;
  r.expected = {{Expectation{{0}, 4}}, {Expectation{{1}, 4}}};
  Tensor o(Dtype::f32, {2, 1, 1, 2});
  for (std::int64_t i = 0; i < 4; ++i) o.set(i, out[i % 2]);
  CHECK(trial_outcomes(r, o) == std::vector<bool>{true, false});
  const Metrics m = task_named("niah").score(r, o, nullptr);
  CHECK(m[0].second == 0.5);
  CHECK(m[1].second == Approx(wilson_interval(1, 2).low));
  CHECK(m[3].second == 2);
  // A set answer: the top two must be exactly {e0, e3}, in any order.
  r.expected = {{Expectation{{3, 0}, 4}}, {Expectation{{0, 1}, 4}}};
  CHECK(trial_outcomes(r, o) == std::vector<bool>{true, false});
}

TEST_CASE("the codebook is orthogonal in its first head_dim entries and separated after", "[retrieval]") {
  const Codebook cb = Codebook::random(160, 32, 7);
  REQUIRE(cb.entries() == 160);
  double worst_orthogonal = 0, worst = 0;
  for (std::int64_t a = 0; a < 160; ++a) {
    const std::vector<double> ea(cb.entry(a), cb.entry(a) + 32);
    double n2 = 0;
    for (double x : ea) n2 += x * x;
    CHECK(n2 == Approx(32.0).epsilon(1e-9));
    for (std::int64_t b = 0; b < a; ++b) {
      const double c = std::abs(cosine(ea, std::vector<double>(cb.entry(b), cb.entry(b) + 32)));
      (a < 32 ? worst_orthogonal : worst) = std::max(a < 32 ? worst_orthogonal : worst, c);
    }
  }
  CHECK(worst_orthogonal < 1e-12);
  CHECK(worst <= kCodebookMaxCos);
}

TEST_CASE("retrieval tasks are deterministic in the seed and differ across seeds", "[retrieval]") {
  std::vector<std::pair<std::string, json>> cases = {
      {"niah", {{"seq_len", 300}, {"samples", 6}, {"heads", 2}, {"depth", 30}}}};
  for (const json& v : kRulerVariants) cases.push_back({"ruler", with(v, {{"seq_len", 400}, {"samples", 4}})});
  for (const auto& [task, given] : cases) {
    INFO(task << " " << given.dump());
    const auto a = build(task, given, 11), b = build(task, given, 11), c = build(task, given, 12);
    CHECK(same_bytes(a->inputs.q, b->inputs.q));
    CHECK(same_bytes(a->inputs.k, b->inputs.k));
    CHECK(same_bytes(a->inputs.v, b->inputs.v));
    CHECK(a->needles == b->needles);
    for (std::int64_t t = 0; t < a->trials; ++t)
      for (std::size_t i = 0; i < a->expected[t].size(); ++i)
        CHECK(a->expected[t][i].answers == b->expected[t][i].answers);
    CHECK_FALSE(same_bytes(a->inputs.q, c->inputs.q));
    CHECK_FALSE(same_bytes(a->inputs.k, c->inputs.k));
    CHECK_FALSE(same_bytes(a->inputs.v, c->inputs.v));
  }
}

TEST_CASE("retrieval problems: trials over batch × heads, queries at the end, causal self attention", "[retrieval]") {
  const Task& niah = task_named("niah");
  CHECK(niah.kind() == TaskKind::retrieval);
  CHECK_FALSE(niah.needs_reference());
  const Problem p = niah.problem(params_of("niah", {{"seq_len", 1000}, {"samples", 12}, {"heads", 3}}));
  CHECK(p.batch == 4);
  CHECK(p.heads == 3);
  CHECK(p.kv_heads == 3);
  CHECK(p.q_len == 1);
  CHECK(p.kv_len == 1000);
  CHECK_FALSE(p.cross);
  CHECK(p.causal());
  CHECK(p.scale == Approx(1.0 / 8));
  const Task& ruler = task_named("ruler");
  CHECK(ruler.problem(params_of("ruler", {{"variant", "multiquery"}, {"queries", 5}})).q_len == 5);
  CHECK(ruler.problem(params_of("ruler", {{"variant", "vt"}, {"hops", 3}})).q_len == 3);
  CHECK(ruler.problem(params_of("ruler", {{"variant", "cwe"}})).q_len == 1);
  CHECK(params_of("ruler", json::object()).integer("samples") == 500);
}

TEST_CASE("niah hand case: L = 8, the needle where depth puts it, exact attention decodes it", "[retrieval]") {
  // Context positions 0..6 (the query is token 7): depth d puts the needle at round(d/100 · 6).
  const std::map<double, std::int64_t> where = {{0.0, 0}, {50.0, 3}, {75.0, 5}, {100.0, 6}};
  for (const auto& [depth, pos] : where) {
    const auto r =
        build("niah", {{"seq_len", 8}, {"depth", depth}, {"samples", 4}, {"head_dim", 32}, {"codebook", 40}}, 3);
    INFO("depth " << depth);
    for (std::int64_t t = 0; t < r->trials; ++t) {
      CHECK(r->needles[t] == std::vector<std::int64_t>{pos});
      CHECK(key_query_cosine(*r, t, 0, pos) == Approx(0.8).margin(1e-5));
      const std::vector<double> q = row_of(r->inputs.q, t, 32);
      double n2 = 0;
      for (double x : q) n2 += x * x;
      CHECK(std::sqrt(n2) == Approx(4.0 * std::sqrt(32.0)).epsilon(1e-5));  // sharpness·sqrt(D)
      REQUIRE(r->expected[t][0].answers.size() == 1);
      CHECK(r->expected[t][0].candidates == 40);
      CHECK(value_is_entry(*r, t, pos, r->expected[t][0].answers[0]));
    }
    const Tensor exact = exact_attention(*r);
    CHECK(trial_outcomes(*r, exact) == std::vector<bool>(4, true));
    CHECK(trial_outcomes(*r, run_method("flash", r->problem, r->inputs)) == std::vector<bool>(4, true));
  }
}

TEST_CASE("ruler hand cases: the planted structure of each variant, decoded from exact attention", "[retrieval]") {
  const json small = {{"samples", 3}, {"head_dim", 32}, {"codebook", 48}};
  SECTION("single: one needle, haystack of noise, a repeated block, or distractor values") {
    for (const std::string haystack : {"noise", "repeat", "needles"}) {
      const auto r = build("ruler", with(small, {{"seq_len", 40}, {"haystack", haystack}}), 5);
      for (std::int64_t t = 0; t < r->trials; ++t) {
        REQUIRE(r->needles[t].size() == 1);
        const std::int64_t pos = r->needles[t][0], answer = r->expected[t][0].answers[0];
        CHECK(pos < 39);
        CHECK(key_query_cosine(*r, t, 0, pos) == Approx(0.8).margin(1e-5));
        CHECK(value_is_entry(*r, t, pos, answer));
        for (std::int64_t i = 0; i < 40; ++i) {
          if (i == pos) continue;
          if (haystack == "repeat" && i >= 16 && i % 16 != pos) {  // a copy of the first 16 pairs
            CHECK(row_of(r->inputs.k, t * 40 + i, 32) == row_of(r->inputs.k, t * 40 + i % 16, 32));
            CHECK(row_of(r->inputs.v, t * 40 + i, 32) == row_of(r->inputs.v, t * 40 + i % 16, 32));
          }
          if (haystack == "needles") {
            bool some_other_entry = false;
            for (std::int64_t e = 0; e < 48; ++e) some_other_entry |= e != answer && value_is_entry(*r, t, i, e);
            CHECK(some_other_entry);
          }
        }
      }
      CHECK(trial_outcomes(*r, exact_attention(*r)) == std::vector<bool>(3, true));
    }
  }
  SECTION("multikey: distractor keys at distractor_signal, their values other entries") {
    const auto r = build("ruler", with(small, {{"seq_len", 24}, {"variant", "multikey"}, {"distractors", 3}}), 5);
    for (std::int64_t t = 0; t < r->trials; ++t) {
      const std::int64_t pos = r->needles[t][0], answer = r->expected[t][0].answers[0];
      int at_distractor_signal = 0;
      for (std::int64_t i = 0; i < 23; ++i)
        if (i != pos && std::abs(key_query_cosine(*r, t, 0, i) - 0.6) < 1e-5) {
          ++at_distractor_signal;
          CHECK_FALSE(value_is_entry(*r, t, i, answer));
        }
      CHECK(at_distractor_signal == 3);
      CHECK(key_query_cosine(*r, t, 0, pos) == Approx(0.8).margin(1e-5));
    }
    CHECK(trial_outcomes(*r, exact_attention(*r)) == std::vector<bool>(3, true));
  }
  SECTION("multivalue: four values under one key, all among the orthogonal vocabulary") {
    const auto r = build("ruler", with(small, {{"seq_len", 24}, {"variant", "multivalue"}, {"values", 4}}), 5);
    for (std::int64_t t = 0; t < r->trials; ++t) {
      const Expectation& e = r->expected[t][0];
      REQUIRE(e.answers.size() == 4);
      CHECK(e.candidates == 32);  // min(codebook, head_dim)
      for (std::size_t j = 0; j < 4; ++j) {
        CHECK(e.answers[j] < 32);
        CHECK(key_query_cosine(*r, t, 0, r->needles[t][j]) == Approx(0.8).margin(1e-5));
        CHECK(value_is_entry(*r, t, r->needles[t][j], e.answers[j]));
      }
    }
    // Equal logits: exact attention's output is nearly the mean of the four values, all four decoded.
    CHECK(trial_outcomes(*r, exact_attention(*r)) == std::vector<bool>(3, true));
  }
  SECTION("multiquery and vt: one needle per query row; vt's queries are the previous values") {
    for (const std::string variant : {"multiquery", "vt"}) {
      const auto r =
          build("ruler", with(small, {{"seq_len", 24}, {"variant", variant}, {"queries", 3}, {"hops", 3}}), 5);
      REQUIRE(r->problem.q_len == 3);
      for (std::int64_t t = 0; t < r->trials; ++t) {
        for (std::int64_t j = 0; j < 3; ++j) {
          const std::int64_t pos = r->needles[t][j], answer = r->expected[t][j].answers[0];
          CHECK(pos < 21);
          CHECK(key_query_cosine(*r, t, j, pos) == Approx(0.8).margin(1e-5));
          CHECK(value_is_entry(*r, t, pos, answer));
          if (variant == "vt" && j > 0) {
            const std::vector<double> prev(r->codebook.entry(r->expected[t][j - 1].answers[0]),
                                           r->codebook.entry(r->expected[t][j - 1].answers[0]) + 32);
            CHECK(cosine(row_of(r->inputs.q, t * 3 + j, 32), prev) == Approx(1.0).margin(1e-6));
            CHECK(r->needles[t][j] > r->needles[t][j - 1]);  // the chain runs forward through the context
          }
        }
      }
      CHECK(trial_outcomes(*r, exact_attention(*r)) == std::vector<bool>(3, true));
    }
  }
  SECTION("cwe and fwe: word counts by rank, the most frequent decoded from the average") {
    // A vocabulary of 4 words, top 1, 15 context tokens. cwe: unit = 15 / (1·10 + 3) = 1, so counts
    // 10, 1, 1, 1 and 2 fillers. fwe: 15·r⁻²/(1 + 1/4 + 1/9 + 1/16) floored: 10, 2, 1, 0 and 2 fillers.
    const std::map<std::string, std::vector<std::int64_t>> counts = {{"cwe", {10, 1, 1, 1}}, {"fwe", {10, 2, 1, 0}}};
    for (const auto& [variant, want] : counts) {
      const auto r = build(
          "ruler",
          {{"variant", variant}, {"seq_len", 16}, {"samples", 3}, {"head_dim", 32}, {"codebook", 4}, {"top", 1}}, 5);
      for (std::int64_t t = 0; t < r->trials; ++t) {
        std::vector<std::int64_t> seen(4, 0);
        std::int64_t fillers = 0;
        for (std::int64_t i = 0; i < 15; ++i) {
          bool word = false;
          for (std::int64_t e = 0; e < 4; ++e)
            if (value_is_entry(*r, t, i, e)) {
              ++seen[e];
              word = true;
              CHECK(key_query_cosine(*r, t, 0, i) == Approx(0.8).margin(1e-5));
            }
          fillers += !word;
        }
        std::vector<std::int64_t> by_count = seen;
        std::sort(by_count.rbegin(), by_count.rend());
        CHECK(by_count == want);
        CHECK(fillers == 2);
        REQUIRE(r->expected[t][0].answers.size() == 1);
        CHECK(seen[r->expected[t][0].answers[0]] == 10);  // the answer is the most frequent word
      }
      CHECK(trial_outcomes(*r, exact_attention(*r)) == std::vector<bool>(3, true));
    }
  }
}

TEST_CASE("exact attention retrieves >= 99% on niah at small sizes", "[retrieval]") {
  for (const double depth : {0.0, 50.0, 100.0}) {
    const auto r = build("niah", {{"seq_len", 1024}, {"depth", depth}, {"samples", 100}}, 21);
    INFO("niah depth " << depth);
    CHECK(fraction(trial_outcomes(*r, run_method("flash", r->problem, r->inputs))) >= 0.99);
    CHECK(fraction(trial_outcomes(*r, run_method("reference", r->problem, r->inputs))) >= 0.99);
  }
}

namespace {
void check_exact_on_ruler(const std::vector<json>& variants) {
  for (const json& v : variants) {
    const auto r = build("ruler", with(v, {{"seq_len", 1024}, {"samples", 100}}), 21);
    INFO("ruler " << v.dump());
    const Metrics m = task_named("ruler").score(*r, run_method("flash", r->problem, r->inputs), nullptr);
    CHECK(m[0].second >= 0.99);
    CHECK(m[3].second == 100);
  }
}
}  // namespace

TEST_CASE("exact attention retrieves >= 99% on ruler's retrieval variants at small sizes", "[retrieval]") {
  check_exact_on_ruler({kRulerVariants.begin(), kRulerVariants.begin() + 5});
}

TEST_CASE("exact attention retrieves >= 99% on ruler's multiquery, vt and aggregation at small sizes", "[retrieval]") {
  check_exact_on_ruler({kRulerVariants.begin() + 5, kRulerVariants.end()});
}

TEST_CASE("sliding_window retrieves exactly the needles inside its window", "[retrieval]") {
  // Causal window W: the query at position L-1 sees keys L-W … L-1, so a needle at pos is inside iff
  // L-1-pos < W.
  const json window = {{"window", 256}};
  SECTION("niah: the last quarter is inside, the rest outside") {
    // L = 1024: depth d puts the needle at round(d/100 · 1022); inside iff pos >= 768, i.e. d >= 75.15.
    for (const auto& [depth, inside] :
         std::vector<std::pair<double, bool>>{{0, false}, {50, false}, {75, false}, {75.2, true}, {100, true}}) {
      const auto r = build("niah", {{"seq_len", 1024}, {"depth", depth}, {"samples", 32}}, 9);
      INFO("depth " << depth << " needle at " << r->needles[0][0]);
      const std::vector<bool> got = trial_outcomes(*r, run_method("sliding_window", r->problem, r->inputs, window));
      CHECK(got == std::vector<bool>(32, inside));
    }
  }
  SECTION("ruler single: per trial, retrieved iff the needle is in the window") {
    for (const std::string haystack : {"noise", "needles"}) {
      const auto r = build("ruler", {{"seq_len", 1024}, {"samples", 64}, {"haystack", haystack}}, 9);
      const std::vector<bool> got = trial_outcomes(*r, run_method("sliding_window", r->problem, r->inputs, window));
      std::int64_t inside = 0;
      for (std::int64_t t = 0; t < r->trials; ++t) {
        const bool in = 1023 - r->needles[t][0] < 256;
        inside += in;
        INFO(haystack << " trial " << t << " needle at " << r->needles[t][0]);
        CHECK(got[t] == in);
      }
      CHECK(inside > 0);  // both kinds of trial occur
      CHECK(inside < 64);
    }
  }
}

TEST_CASE("retrieval tasks refuse what they cannot build, with a sentence", "[retrieval]") {
  auto refusal = [](const std::string& task, const json& given) {
    return task_named(task).check(params_of(task, given)).value_or("");
  };
  using Catch::Matchers::Contains;
  CHECK_THAT(refusal("ruler", {{"seq_len", 131072}}), Contains("2 GiB") && Contains("use samples <= 32"));
  CHECK_THAT(refusal("niah", {{"samples", 10}, {"heads", 3}}), Contains("must divide samples"));
  CHECK_THAT(refusal("niah", {{"codebook", 2000}}), Contains("at most 16·head_dim"));
  CHECK_THAT(refusal("ruler", {{"variant", "multikey"}, {"distractor_signal", 0.9}}), Contains("must be below signal"));
  CHECK_THAT(refusal("ruler", {{"variant", "multivalue"}, {"values", 40}, {"codebook", 32}, {"head_dim", 32}}),
             Contains("vocabulary"));
  CHECK_THAT(refusal("ruler", {{"variant", "cwe"}, {"seq_len", 100}}), Contains("longer seq_len"));
  CHECK_THAT(refusal("ruler", {{"variant", "multiquery"}, {"queries", 8}, {"seq_len", 8}}), Contains("context tokens"));
  CHECK(refusal("ruler", {{"seq_len", 131072}, {"samples", 32}}).empty());
  CHECK(refusal("ruler", {{"variant", "cwe"}, {"seq_len", 4096}}).empty());
}
