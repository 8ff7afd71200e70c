// The `cab` efficiency task: the four attention patterns of CAB (Zhang et al., CAB: Comprehensive
// Attention Benchmarking on Long Sequence Modeling, ICML 2023) — self/cross × non-causal/causal — over a
// length sweep, scored by fidelity against the float64 oracle.
#include "datasets/tasks/efficiency_common.hpp"

namespace attnbench {
namespace {

class CabTask final : public efficiency::EfficiencyTask {
 public:
  TaskInfo info() const override {
    return TaskInfo{
        "cab", TaskKind::efficiency,
        "CAB's attention patterns (self/cross, full/causal) over lengths; fidelity against the float64 oracle",
        efficiency::with_input_params(
            {ParamSpec::choice("pattern", "self_full", {"self_full", "self_causal", "cross_full", "cross_causal"},
                               "self or cross attention, non-causal (full) or causal (bottom-right aligned)"),
             ParamSpec::integer("seq_len", 1024, 1, 1 << 24, "query length"),
             ParamSpec::integer("kv_len", 0, 0, 1 << 24, "key length of the cross patterns (0: same as seq_len)"),
             ParamSpec::integer("batch", 1, 1, 4096, "sequences per call"),
             ParamSpec::integer("heads", 8, 1, 1024, "query heads (= kv heads)"),
             ParamSpec::integer("head_dim", 64, 1, 1024, "query/key/value head dimension"), efficiency::dtype_param()}),
        efficiency::fidelity_metrics()};
  }

  std::optional<std::string> check(const Params& p) const override {
    const std::string pattern = p.string("pattern");
    const bool cross = pattern.rfind("cross", 0) == 0;
    if (!cross && p.integer("kv_len") != 0)
      return "kv_len is for the cross patterns; pattern " + pattern + " is self attention (leave kv_len at 0)";
    const std::int64_t kv = p.integer("kv_len") ? p.integer("kv_len") : p.integer("seq_len");
    if (pattern == "cross_causal" && kv < p.integer("seq_len"))
      return "cross_causal with kv_len (" + std::to_string(kv) + ") below seq_len (" +
             std::to_string(p.integer("seq_len")) + ") leaves the first queries no key; use kv_len >= seq_len";
    return efficiency::check_inputs(p, p.integer("head_dim"));
  }

  Problem problem(const Params& p) const override {
    const std::string pattern = p.string("pattern");
    Problem pr;
    pr.batch = p.integer("batch");
    pr.heads = pr.kv_heads = p.integer("heads");
    pr.q_len = p.integer("seq_len");
    pr.kv_len = p.integer("kv_len") ? p.integer("kv_len") : pr.q_len;
    pr.head_dim = p.integer("head_dim");
    pr.cross = pattern.rfind("cross", 0) == 0;
    efficiency::finish_problem(pr, p);
    const bool causal = pattern.ends_with("_causal");
    pr.mask = make_mask(causal ? "causal" : "full", json::object(), pr.mask_shape());
    return pr;
  }
};

}  // namespace
ATTNBENCH_REGISTER_TASK(CabTask);
}  // namespace attnbench
