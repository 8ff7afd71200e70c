// The `decode` efficiency task: one to a few new tokens against a long KV cache (the generation step),
// with batch and GQA ratio as axes; causal, bottom-right aligned, so the new tokens see the whole cache.
#include "datasets/tasks/efficiency_common.hpp"

namespace attnbench {
namespace {

class DecodeTask final : public efficiency::EfficiencyTask {
 public:
  TaskInfo info() const override {
    return TaskInfo{
        "decode", TaskKind::efficiency,
        "new tokens against a KV cache of kv_len (causal, bottom-right); batch and GQA ratio as axes",
        efficiency::with_input_params(
            {ParamSpec::integer("new_tokens", 1, 1, 1024, "queries: tokens generated in this step (1: plain decode)"),
             ParamSpec::integer("kv_len", 4096, 1, 1 << 24, "tokens in the KV cache, the new ones included"),
             ParamSpec::integer("batch", 1, 1, 4096, "sequences decoded together"),
             ParamSpec::integer("heads", 32, 1, 1024, "query heads"),
             ParamSpec::integer("gqa_ratio", 4, 1, 1024, "query heads per kv head (1: MHA; heads: MQA)"),
             ParamSpec::integer("head_dim", 128, 1, 1024, "query/key/value head dimension"),
             efficiency::dtype_param()}),
        efficiency::fidelity_metrics()};
  }

  std::optional<std::string> check(const Params& p) const override {
    const auto heads = p.integer("heads"), ratio = p.integer("gqa_ratio");
    if (ratio > heads || heads % ratio != 0)
      return "gqa_ratio (" + std::to_string(ratio) + ") must divide heads (" + std::to_string(heads) + ")";
    if (p.integer("new_tokens") > p.integer("kv_len"))
      return "new_tokens (" + std::to_string(p.integer("new_tokens")) + ") must not exceed kv_len (" +
             std::to_string(p.integer("kv_len")) + "), which counts them";
    return efficiency::check_inputs(p, p.integer("head_dim"));
  }

  Problem problem(const Params& p) const override {
    Problem pr;
    pr.batch = p.integer("batch");
    pr.heads = p.integer("heads");
    pr.kv_heads = pr.heads / p.integer("gqa_ratio");
    pr.q_len = p.integer("new_tokens");
    pr.kv_len = p.integer("kv_len");
    pr.head_dim = p.integer("head_dim");
    pr.cross = false;  // the queries are the last tokens of the same sequence
    efficiency::finish_problem(pr, p);
    pr.mask = make_mask("causal", json::object(), pr.mask_shape());
    return pr;
  }
};

}  // namespace
ATTNBENCH_REGISTER_TASK(DecodeTask);
}  // namespace attnbench
