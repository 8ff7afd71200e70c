// The `synthetic` efficiency task: Gaussian Q/K/V of a swept shape, scored by fidelity to the oracle.
#include <cmath>

#include "attnbench/task.hpp"
#include "datasets/generators.hpp"

namespace attnbench {
namespace {

class SyntheticTask final : public Task {
 public:
  TaskInfo info() const override {
    return TaskInfo{
        "synthetic",
        TaskKind::efficiency,
        "i.i.d. N(0,1) queries, keys and values of any shape; fidelity against the float64 oracle",
        {ParamSpec::integer("batch", 1, 1, 4096, "sequences per call"),
         ParamSpec::integer("heads", 8, 1, 1024, "query heads"),
         ParamSpec::integer("kv_heads", 0, 0, 1024, "key/value heads (0: same as heads; 1: MQA; between: GQA)"),
         ParamSpec::integer(
             "model_heads", 0, 0, 1024,
             "the model's query heads (0: same as heads); heads below it is Sparse Query Attention (SQA)"),
         ParamSpec::integer("seq_len", 1024, 1, 1 << 24, "query length"),
         ParamSpec::integer("kv_len", 0, 0, 1 << 24, "key length (0: same as seq_len, self attention; else cross)"),
         ParamSpec::integer("head_dim", 64, 1, 1024, "query/key head dimension"),
         ParamSpec::integer("value_dim", 0, 0, 1024, "value head dimension (0: same as head_dim)"),
         ParamSpec::choice("dtype", "fp32", {"fp32", "bf16", "fp16"},
                           "storage type of Q, K, V and the output (fp16: GPU methods only)"),
         ParamSpec::boolean("causal", false, "causal mask, bottom-right aligned when kv_len != seq_len"),
         ParamSpec::number("scale", 0.0, 0.0, 1e6, "softmax scale (0: 1/sqrt(head_dim))"),
         ParamSpec::integer("check_every", 1, 1, 1 << 20,
                            "fidelity on every N-th query row (and the last) of each (batch, head): the float64 "
                            "oracle runs on the CPU, so long GPU cells check a sample (1: every row)")},
        {MetricSpec{"rel_l2", "", false, "‖out − ref‖₂ / ‖ref‖₂ against the float64 oracle"},
         MetricSpec{"max_abs", "", false, "max |out − ref|"}}};
  }

  std::optional<std::string> check(const Params& p) const override {
    const auto heads = p.integer("heads"), kv = p.integer("kv_heads");
    if (kv != 0 && (kv > heads || heads % kv != 0))
      return "kv_heads (" + std::to_string(kv) + ") must divide heads (" + std::to_string(heads) + ")";
    if (const auto model = p.integer("model_heads"); model != 0 && model < heads)
      return "model_heads (" + std::to_string(model) + ") must be at least heads (" + std::to_string(heads) + ")";
    return std::nullopt;
  }

  Problem problem(const Params& p) const override {
    Problem pr;
    pr.batch = p.integer("batch");
    pr.heads = p.integer("heads");
    pr.kv_heads = p.integer("kv_heads") ? p.integer("kv_heads") : pr.heads;
    pr.q_len = p.integer("seq_len");
    pr.kv_len = p.integer("kv_len") ? p.integer("kv_len") : pr.q_len;
    pr.cross = p.integer("kv_len") != 0;
    pr.head_dim = p.integer("head_dim");
    pr.value_dim = p.integer("value_dim") ? p.integer("value_dim") : pr.head_dim;
    pr.dtype = parse_dtype(p.string("dtype"));
    pr.scale = p.number("scale") > 0 ? p.number("scale") : 1.0 / std::sqrt(static_cast<double>(pr.head_dim));
    pr.mask = make_mask(p.boolean("causal") ? "causal" : "full", json::object(), pr.mask_shape());
    return pr;
  }

  std::unique_ptr<TaskInstance> make(const Params& p, std::uint64_t seed) const override {
    auto inst = std::make_unique<TaskInstance>();
    inst->problem = problem(p);
    inst->inputs = datasets::gaussian_inputs(inst->problem, seed);
    inst->check_every = p.integer("check_every");
    return inst;
  }

  Metrics score(const TaskInstance&, const Tensor& out, const Tensor* reference) const override {
    const Fidelity f = fidelity(out, *reference);
    return {{"rel_l2", f.rel_l2}, {"max_abs", f.max_abs}};
  }
};

}  // namespace
ATTNBENCH_REGISTER_TASK(SyntheticTask);
}  // namespace attnbench
