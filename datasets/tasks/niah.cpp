// The `niah` retrieval task: one needle (a key correlated with the query, a codebook value) at a given
// depth of a noise haystack; scored by whether the attention output decodes to the needle's value.
#include <cmath>

#include "datasets/tasks/retrieval_common.hpp"

namespace attnbench {
namespace {

using namespace retrieval;

class NiahTask final : public RetrievalTask {
 public:
  TaskInfo info() const override {
    std::vector<ParamSpec> params = {
        ParamSpec::integer("seq_len", 4096, 2, 1 << 24,
                           "context length L in tokens, the query token included (the last)"),
        ParamSpec::number(
            "depth", 50.0, 0.0, 100.0,
            "needle position in percent of the context: 0 the first token, 100 the one before the query")};
    for (auto& spec : common_params(100)) params.push_back(std::move(spec));
    return TaskInfo{"niah", TaskKind::retrieval,
                    "needle in a haystack at the attention level: one key/value needle at a depth of L noise tokens; "
                    "accuracy of decoding the needle's value from the last token's output",
                    std::move(params), accuracy_metric_specs()};
  }

  std::optional<std::string> check(const Params& p) const override { return check_common(p); }

  Problem problem(const Params& p) const override { return retrieval_problem(p, 1); }

  // Context positions are 0 … L-2 (the query token is L-1); depth d puts the needle at round(d/100 · (L-2)).
  static std::int64_t needle_position(std::int64_t seq_len, double depth) {
    return std::llround(depth / 100.0 * static_cast<double>(seq_len - 2));
  }

  std::unique_ptr<TaskInstance> make(const Params& p, std::uint64_t seed) const override {
    auto inst = new_instance(p, 1, seed);
    const double signal = p.number("signal"), sharpness = p.number("sharpness");
    const std::int64_t codebook = inst->codebook.entries();
    const std::int64_t pos = needle_position(p.integer("seq_len"), p.number("depth"));
    RetrievalInstance& r = *inst;
    for_each_trial(r.trials, seed, [&](std::int64_t t, Rng& rng) {
      TrialWriter w(r, t);
      const std::vector<double> q = random_unit(rng, w.dim());
      w.query(0, q, sharpness);
      for (std::int64_t i = 0; i < w.kv_len(); ++i) {
        w.key_noise(i, rng);
        w.value_noise(i, rng);
      }
      const auto answer = static_cast<std::int64_t>(rng.below(codebook));
      w.key_with_cosine(pos, q, signal, rng);
      w.value_entry(pos, answer);
      r.expected[t][0] = Expectation{{answer}, codebook};
      r.needles[t] = {pos};
    });
    return inst;
  }
};

}  // namespace
ATTNBENCH_REGISTER_TASK(NiahTask);
}  // namespace attnbench
