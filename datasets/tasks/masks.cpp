// The `masks` efficiency task: the mask patterns long-context training uses, each one named mask kind
// that both the float64 oracle and the kernels consume, so fidelity is always against the same mask.
#include <sstream>
#include <stdexcept>
#include <utility>

#include "datasets/tasks/efficiency_common.hpp"

namespace attnbench {
namespace {

// The registered mask kind behind each of the task's mask names, with its parameters from the task's.
std::pair<std::string, json> mask_kind(const Params& p) {
  const std::string m = p.string("mask");
  if (m == "full" || m == "causal") return {m, json::object()};
  if (m == "sliding_window") return {m, json{{"window", p.integer("window")}, {"mode", p.string("mode")}}};
  if (m == "sink_window") return {m, json{{"sinks", p.integer("sinks")}, {"window", p.integer("window")}}};
  if (m == "document")
    return {m, json{{"doc_lens", p.string("doc_lens")},
                    {"documents", p.integer("documents")},
                    {"seed", p.integer("mask_seed")},
                    {"causal", p.boolean("causal")}}};
  if (m == "shared_question") return {m, json{{"question", p.integer("question")}, {"answers", p.integer("answers")}}};
  if (m == "global_sliding")
    return {"longformer",
            json{{"global", p.integer("global")}, {"window", p.integer("window")}, {"mode", p.string("mode")}}};
  if (m == "block_causal") return {m, json{{"block", p.integer("block")}}};
  if (m == "dilated") return {m, json{{"window", p.integer("window")}, {"dilation", p.integer("dilation")}}};
  return {"random_block", json{{"block", p.integer("block")},
                               {"density", p.number("density")},
                               {"seed", p.integer("mask_seed")},
                               {"causal", p.boolean("causal")}}};
}

class MasksTask final : public efficiency::EfficiencyTask {
 public:
  TaskInfo info() const override {
    return TaskInfo{
        "masks", TaskKind::efficiency,
        "self attention under one named mask (the oracle and the kernels use the same); fidelity against the oracle",
        efficiency::with_input_params(
            {ParamSpec::choice("mask", "causal",
                               {"full", "causal", "sliding_window", "sink_window", "document", "shared_question",
                                "global_sliding", "block_causal", "dilated", "random_block"},
                               "the mask (global_sliding is the longformer kind); its parameters are below"),
             ParamSpec::integer("seq_len", 4096, 1, 1 << 24, "sequence length (queries = keys)"),
             ParamSpec::integer("batch", 1, 1, 4096, "sequences per call"),
             ParamSpec::integer("heads", 8, 1, 1024, "query heads (= kv heads)"),
             ParamSpec::integer("head_dim", 64, 1, 1024, "query/key/value head dimension"), efficiency::dtype_param(),
             ParamSpec::integer("window", 256, 1, 1 << 24,
                                "sliding_window, sink_window, global_sliding, dilated: keys in the window"),
             ParamSpec::choice("mode", "causal", {"causal", "centred"},
                               "sliding_window, global_sliding: window ends at or is centred on the query"),
             ParamSpec::integer("sinks", 4, 0, 1 << 24, "sink_window: first tokens every query sees"),
             ParamSpec::integer("global", 16, 0, 1 << 24,
                                "global_sliding: first tokens attending and attended everywhere"),
             ParamSpec::integer("block", 64, 1, 1 << 24, "block_causal, random_block: tokens per block"),
             ParamSpec::integer("dilation", 2, 1, 1 << 20, "dilated: distance between the window's keys"),
             ParamSpec::choice("doc_lens", "", {},
                               "document: comma-separated lengths summing to seq_len (empty: seeded split)"),
             ParamSpec::integer("documents", 4, 1, 1 << 24, "document: documents of the seeded split"),
             ParamSpec::boolean("causal", true, "document: causal within documents; random_block: also k <= pos"),
             ParamSpec::integer("question", 512, 1, 1 << 24, "shared_question: tokens of the shared question"),
             ParamSpec::integer("answers", 4, 1, 1 << 20, "shared_question: answers splitting the rest evenly"),
             ParamSpec::number("density", 0.25, 0.0, 1.0,
                               "random_block: probability an off-diagonal block pair is kept"),
             ParamSpec::integer("mask_seed", 0, 0, std::int64_t{1} << 40,
                                "document, random_block: seed of the random choice")}),
        efficiency::fidelity_metrics()};
  }

  std::optional<std::string> check(const Params& p) const override {
    const std::int64_t len = p.integer("seq_len");
    const std::string m = p.string("mask");
    if (m == "document" && !p.string("doc_lens").empty()) {
      std::stringstream in(p.string("doc_lens"));
      std::string item;
      std::int64_t sum = 0;
      while (std::getline(in, item, ',')) {
        std::size_t used = 0;
        std::int64_t n = 0;
        try {
          n = std::stoll(item, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != item.size() || n <= 0)
          return "doc_lens \"" + p.string("doc_lens") + "\" must be positive integers separated by commas";
        sum += n;
      }
      if (sum != len)
        return "doc_lens \"" + p.string("doc_lens") + "\" sums to " + std::to_string(sum) + ", not seq_len (" +
               std::to_string(len) + ")";
    }
    if (m == "document" && p.string("doc_lens").empty() && p.integer("documents") > len)
      return "documents (" + std::to_string(p.integer("documents")) + ") exceeds seq_len (" + std::to_string(len) + ")";
    if (m == "shared_question" && p.integer("question") + p.integer("answers") > len)
      return "question (" + std::to_string(p.integer("question")) + ") and " + std::to_string(p.integer("answers")) +
             " answers of at least one token do not fit in seq_len (" + std::to_string(len) + ")";
    if (m == "global_sliding" && p.integer("global") >= len)
      return "global (" + std::to_string(p.integer("global")) + ") must be below seq_len (" + std::to_string(len) +
             "), or every token is global and the mask is full";
    if ((m == "block_causal" || m == "random_block") && p.integer("block") >= len)
      return "block (" + std::to_string(p.integer("block")) + ") must be below seq_len (" + std::to_string(len) +
             "), or there is a single block";
    return efficiency::check_inputs(p, p.integer("head_dim"));
  }

  Problem problem(const Params& p) const override {
    Problem pr;
    pr.batch = p.integer("batch");
    pr.heads = pr.kv_heads = p.integer("heads");
    pr.q_len = pr.kv_len = p.integer("seq_len");
    pr.head_dim = p.integer("head_dim");
    efficiency::finish_problem(pr, p);
    const auto [kind, params] = mask_kind(p);
    pr.mask = make_mask(kind, params, pr.mask_shape());
    return pr;
  }
};

}  // namespace
ATTNBENCH_REGISTER_TASK(MasksTask);
}  // namespace attnbench
