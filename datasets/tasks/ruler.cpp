// The `ruler` retrieval task: RULER's retrieval, tracing and aggregation families at the attention level
// (single, multikey, multivalue, multiquery, vt, cwe, fwe), each defined in docs/retrieval.md.
#include <algorithm>
#include <cmath>

#include "datasets/tasks/retrieval_common.hpp"

namespace attnbench {
namespace {

using namespace retrieval;

// Distinct key/value pairs of the `repeat` haystack, tiled over the context (RULER repeats one short text).
constexpr std::int64_t kRepeatPeriod = 16;
// cwe: each common word occurs this many times as often as each uncommon one (RULER: 30 against 3).
constexpr std::int64_t kCommonRatio = 10;
// fwe: word of rank r occurs in proportion to r^-alpha (RULER's Zipf exponent).
constexpr double kZipfAlpha = 2.0;

enum class Variant { single, multikey, multivalue, multiquery, vt, cwe, fwe };

Variant variant_of(const Params& p) {
  const std::string v = p.string("variant");
  if (v == "single") return Variant::single;
  if (v == "multikey") return Variant::multikey;
  if (v == "multivalue") return Variant::multivalue;
  if (v == "multiquery") return Variant::multiquery;
  if (v == "vt") return Variant::vt;
  if (v == "cwe") return Variant::cwe;
  return Variant::fwe;
}

std::int64_t q_len_of(const Params& p) {
  switch (variant_of(p)) {
    case Variant::multiquery:
      return p.integer("queries");
    case Variant::vt:
      return p.integer("hops");
    default:
      return 1;
  }
}

// The aggregation vocabulary: the orthogonal part of the codebook, so that a histogram of words is
// read back exactly from an average of their values.
std::int64_t vocabulary(const Params& p) { return std::min(p.integer("codebook"), p.integer("head_dim")); }

std::int64_t top_of(const Params& p) {
  if (p.integer("top") > 0) return p.integer("top");
  return variant_of(p) == Variant::cwe ? 10 : 3;
}

// Occurrences of the word of each rank (0 = most frequent) in `context` tokens; the rest are fillers.
// Empty when the context is too short for the ranks to be told apart.
std::vector<std::int64_t> word_counts(Variant v, std::int64_t context, std::int64_t vocab, std::int64_t top) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(vocab));
  if (v == Variant::cwe) {
    const std::int64_t unit = context / (top * kCommonRatio + (vocab - top));
    if (unit < 1) return {};
    for (std::int64_t r = 0; r < vocab; ++r) counts[r] = r < top ? kCommonRatio * unit : unit;
    return counts;
  }
  double harmonic = 0;
  for (std::int64_t r = 1; r <= vocab; ++r) harmonic += std::pow(static_cast<double>(r), -kZipfAlpha);
  for (std::int64_t r = 1; r <= vocab; ++r)
    counts[r - 1] = static_cast<std::int64_t>(
        std::floor(static_cast<double>(context) * std::pow(static_cast<double>(r), -kZipfAlpha) / harmonic));
  if (counts[top - 1] <= counts[top]) return {};
  return counts;
}

class RulerTask final : public RetrievalTask {
 public:
  TaskInfo info() const override {
    std::vector<ParamSpec> params = {
        ParamSpec::integer("seq_len", 4096, 2, 1 << 24,
                           "context length L in tokens, the query tokens included (the last ones)"),
        ParamSpec::choice(
            "variant", "single", {"single", "multikey", "multivalue", "multiquery", "vt", "cwe", "fwe"},
            "RULER task: single/multikey/multivalue/multiquery retrieval, vt tracing, cwe/fwe aggregation"),
        ParamSpec::choice(
            "haystack", "noise", {"noise", "repeat", "needles"},
            "single: i.i.d. noise, 16 key/value pairs repeated, or needle-like distractors (codebook values)"),
        ParamSpec::integer("distractors", 4, 1, 64,
                           "multikey: distractor needles whose keys have cosine distractor_signal"),
        ParamSpec::number("distractor_signal", 0.6, 0.0, 1.0,
                          "multikey: cosine of a distractor's key with the query (< signal)"),
        ParamSpec::integer("values", 4, 2, 64, "multivalue: values planted under one key, all to be recovered"),
        ParamSpec::integer("queries", 4, 1, 64,
                           "multiquery: needles, each with its own query token, all to be retrieved"),
        ParamSpec::integer("hops", 4, 1, 64, "vt: hops of the chain; each hop's query is the previous hop's value"),
        ParamSpec::integer("top", 0, 0, 64,
                           "cwe/fwe: most frequent words to extract (0: RULER's 10 for cwe, 3 for fwe)")};
    for (auto& spec : common_params(500)) params.push_back(std::move(spec));
    return TaskInfo{"ruler", TaskKind::retrieval,
                    "RULER at the attention level: retrieval (single, multikey, multivalue, multiquery), variable "
                    "tracking (vt) and aggregation (cwe, fwe) over L tokens; accuracy of decoding the planted values",
                    std::move(params), accuracy_metric_specs()};
  }

  std::optional<std::string> check(const Params& p) const override {
    if (auto err = check_common(p)) return err;
    const Variant v = variant_of(p);
    const std::int64_t q_len = q_len_of(p), seq_len = p.integer("seq_len"), context = seq_len - q_len;
    const std::int64_t codebook = p.integer("codebook"), vocab = vocabulary(p);
    const std::string name = p.string("variant");
    auto need_context = [&](std::int64_t n, const std::string& what) -> std::optional<std::string> {
      if (context >= n) return std::nullopt;
      return name + " needs " + std::to_string(n) + " context tokens for " + what + " before its " +
             std::to_string(q_len) + " query token(s); seq_len " + std::to_string(seq_len) + " leaves " +
             std::to_string(context);
    };
    switch (v) {
      case Variant::single:
        if (p.string("haystack") == "needles" && codebook < 2)
          return std::string(
              "the needles haystack needs a codebook of at least 2 entries (distractor values differ from the "
              "needle's)");
        return need_context(1, "the needle");
      case Variant::multikey:
        if (p.number("distractor_signal") >= p.number("signal"))
          return "distractor_signal (" + json(p.number("distractor_signal")).dump() + ") must be below signal (" +
                 json(p.number("signal")).dump() + "), else no attention can tell the needle from its distractors";
        return need_context(1 + p.integer("distractors"), "the needle and its distractors");
      case Variant::multivalue:
        if (p.integer("values") >= vocab)
          return "values (" + std::to_string(p.integer("values")) +
                 ") must be below the vocabulary min(codebook, head_dim) (" + std::to_string(vocab) + ")";
        return need_context(p.integer("values"), "the values");
      case Variant::multiquery:
        if (p.integer("queries") > codebook)
          return "queries (" + std::to_string(p.integer("queries")) + ") must not exceed codebook (" +
                 std::to_string(codebook) + "): each needle has its own value";
        return need_context(p.integer("queries"), "the needles");
      case Variant::vt:
        if (p.integer("hops") > codebook)
          return "hops (" + std::to_string(p.integer("hops")) + ") must not exceed codebook (" +
                 std::to_string(codebook) + "): each hop has its own value";
        return need_context(p.integer("hops"), "the chain");
      case Variant::cwe:
      case Variant::fwe: {
        const std::int64_t top = top_of(p);
        if (top >= vocab)
          return "top (" + std::to_string(top) + ") must be below the vocabulary min(codebook, head_dim) (" +
                 std::to_string(vocab) + ")";
        if (word_counts(v, context, vocab, top).empty())
          return name + " with " + std::to_string(vocab) + " words cannot tell the " + std::to_string(top) +
                 " most frequent apart in " + std::to_string(context) + " context tokens; use a longer seq_len";
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  Problem problem(const Params& p) const override { return retrieval_problem(p, q_len_of(p)); }

  std::unique_ptr<TaskInstance> make(const Params& p, std::uint64_t seed) const override {
    auto inst = new_instance(p, q_len_of(p), seed);
    RetrievalInstance& r = *inst;
    const Variant v = variant_of(p);
    for_each_trial(r.trials, seed, [&](std::int64_t t, Rng& rng) {
      TrialWriter w(r, t);
      switch (v) {
        case Variant::single:
          single(p, r, t, w, rng);
          break;
        case Variant::multikey:
          multikey(p, r, t, w, rng);
          break;
        case Variant::multivalue:
          multivalue(p, r, t, w, rng);
          break;
        case Variant::multiquery:
          multiquery(p, r, t, w, rng);
          break;
        case Variant::vt:
          vt(p, r, t, w, rng);
          break;
        case Variant::cwe:
        case Variant::fwe:
          aggregation(p, v, r, t, w, rng);
          break;
      }
    });
    return inst;
  }

 private:
  static void noise(TrialWriter& w, Rng& rng, std::int64_t from = 0) {
    for (std::int64_t i = from; i < w.kv_len(); ++i) {
      w.key_noise(i, rng);
      w.value_noise(i, rng);
    }
  }

  static void single(const Params& p, RetrievalInstance& r, std::int64_t t, TrialWriter& w, Rng& rng) {
    const std::int64_t codebook = r.codebook.entries();
    const std::vector<double> q = random_unit(rng, w.dim());
    w.query(0, q, p.number("sharpness"));
    const auto answer = static_cast<std::int64_t>(rng.below(codebook));
    const auto pos = static_cast<std::int64_t>(rng.below(w.context()));
    const std::string haystack = p.string("haystack");
    if (haystack == "noise") {
      noise(w, rng);
    } else if (haystack == "repeat") {
      const std::int64_t period = std::min(kRepeatPeriod, w.kv_len());
      for (std::int64_t i = 0; i < w.kv_len(); ++i) {
        if (i < period) {
          w.key_noise(i, rng);
          w.value_noise(i, rng);
        } else {
          w.key_copy(i, i % period);
          w.value_copy(i, i % period);
        }
      }
    } else {  // needles: every haystack token a key/value pair whose value is another codebook entry
      for (std::int64_t i = 0; i < w.kv_len(); ++i) {
        w.key_noise(i, rng);
        w.value_entry(i, other_than(rng, codebook, answer));
      }
    }
    w.key_with_cosine(pos, q, p.number("signal"), rng);
    w.value_entry(pos, answer);
    r.expected[t][0] = Expectation{{answer}, codebook};
    r.needles[t] = {pos};
  }

  static void multikey(const Params& p, RetrievalInstance& r, std::int64_t t, TrialWriter& w, Rng& rng) {
    const std::int64_t codebook = r.codebook.entries(), n = p.integer("distractors");
    const std::vector<double> q = random_unit(rng, w.dim());
    w.query(0, q, p.number("sharpness"));
    noise(w, rng);
    const auto answer = static_cast<std::int64_t>(rng.below(codebook));
    const std::vector<std::int64_t> pos = distinct(rng, 1 + n, w.context());
    w.key_with_cosine(pos[0], q, p.number("signal"), rng);
    w.value_entry(pos[0], answer);
    for (std::int64_t j = 1; j <= n; ++j) {
      w.key_with_cosine(pos[j], q, p.number("distractor_signal"), rng);
      w.value_entry(pos[j], other_than(rng, codebook, answer));
    }
    r.expected[t][0] = Expectation{{answer}, codebook};
    r.needles[t] = {pos[0]};
  }

  static void multivalue(const Params& p, RetrievalInstance& r, std::int64_t t, TrialWriter& w, Rng& rng) {
    const std::int64_t vocab = vocabulary(p), n = p.integer("values");
    const std::vector<double> q = random_unit(rng, w.dim());
    w.query(0, q, p.number("sharpness"));
    noise(w, rng);
    const std::vector<std::int64_t> answers = distinct(rng, n, vocab);
    const std::vector<std::int64_t> pos = distinct(rng, n, w.context());
    for (std::int64_t j = 0; j < n; ++j) {
      w.key_with_cosine(pos[j], q, p.number("signal"), rng);  // the same cosine: the same logit, equal weights
      w.value_entry(pos[j], answers[j]);
    }
    r.expected[t][0] = Expectation{answers, vocab};
    r.needles[t] = pos;
  }

  static void multiquery(const Params& p, RetrievalInstance& r, std::int64_t t, TrialWriter& w, Rng& rng) {
    const std::int64_t codebook = r.codebook.entries(), n = p.integer("queries");
    noise(w, rng);
    const std::vector<std::int64_t> answers = distinct(rng, n, codebook);
    const std::vector<std::int64_t> pos = distinct(rng, n, w.context());
    for (std::int64_t j = 0; j < n; ++j) {
      const std::vector<double> q = random_unit(rng, w.dim());
      w.query(j, q, p.number("sharpness"));
      w.key_with_cosine(pos[j], q, p.number("signal"), rng);
      w.value_entry(pos[j], answers[j]);
      r.expected[t][j] = Expectation{{answers[j]}, codebook};
    }
    r.needles[t] = pos;
  }

  // Hop h's query is the direction of hop h-1's value (hop 0's is random); its needle, later in the
  // context than hop h-1's, has a key of cosine `signal` with that query and the next value.
  static void vt(const Params& p, RetrievalInstance& r, std::int64_t t, TrialWriter& w, Rng& rng) {
    const std::int64_t codebook = r.codebook.entries(), hops = p.integer("hops");
    noise(w, rng);
    const std::vector<std::int64_t> answers = distinct(rng, hops, codebook);
    std::vector<std::int64_t> pos = distinct(rng, hops, w.context());
    std::sort(pos.begin(), pos.end());
    std::vector<double> q = random_unit(rng, w.dim());
    for (std::int64_t h = 0; h < hops; ++h) {
      if (h > 0) q = unit_of(r.codebook.entry(answers[h - 1]), w.dim());
      w.query(h, q, p.number("sharpness"));
      w.key_with_cosine(pos[h], q, p.number("signal"), rng);
      w.value_entry(pos[h], answers[h]);
      r.expected[t][h] = Expectation{{answers[h]}, codebook};
    }
    r.needles[t] = pos;
  }

  // Every word token's key has cosine `signal` with the query, so exact attention averages the words'
  // values: the output is the context's word histogram over orthogonal codebook entries. Fillers (the
  // tokens left when the counts do not fill the context) are noise the query barely sees.
  static void aggregation(const Params& p, Variant v, RetrievalInstance& r, std::int64_t t, TrialWriter& w, Rng& rng) {
    const std::int64_t vocab = vocabulary(p), top = top_of(p), context = w.context();
    const std::vector<double> q = random_unit(rng, w.dim());
    w.query(0, q, p.number("sharpness"));
    const std::vector<std::int64_t> word_of_rank = distinct(rng, vocab, vocab);
    const std::vector<std::int64_t> counts = word_counts(v, context, vocab, top);
    std::vector<std::int64_t> tokens;
    tokens.reserve(static_cast<std::size_t>(context));
    for (std::int64_t rank = 0; rank < vocab; ++rank) tokens.insert(tokens.end(), counts[rank], word_of_rank[rank]);
    tokens.resize(static_cast<std::size_t>(context), -1);
    for (std::int64_t i = context - 1; i > 0; --i)
      std::swap(tokens[i], tokens[static_cast<std::int64_t>(rng.below(i + 1))]);
    for (std::int64_t i = 0; i < context; ++i) {
      if (tokens[i] >= 0) {
        w.key_with_cosine(i, q, p.number("signal"), rng);
        w.value_entry(i, tokens[i]);
      } else {
        w.key_noise(i, rng);
        w.value_noise(i, rng);
      }
    }
    noise(w, rng, context);
    r.expected[t][0] = Expectation{std::vector<std::int64_t>(word_of_rank.begin(), word_of_rank.begin() + top), vocab};
    r.needles[t] = {};
  }
};

}  // namespace
ATTNBENCH_REGISTER_TASK(RulerTask);
}  // namespace attnbench
