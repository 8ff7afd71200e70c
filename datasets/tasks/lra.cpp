// The `lra` efficiency task: the attention shapes of Long Range Arena (Tay et al., 2021) — each
// benchmark's length and head dim from its base config — as non-causal self attention.
#include <algorithm>
#include <array>

#include "datasets/tasks/efficiency_common.hpp"

namespace attnbench {
namespace {

struct LraShape {
  const char* name;
  std::int64_t length, heads, head_dim;  // head_dim = qkv_dim / num_heads of the base config
};

// lra_benchmarks/*/configs/base_*_config.py: max_length (Text: 4K byte-level, as in the paper), num_heads,
// qkv_dim / num_heads.
constexpr std::array<LraShape, 6> kLraShapes{{{"listops", 2000, 8, 64},
                                              {"text", 4000, 4, 64},
                                              {"retrieval", 4000, 4, 32},
                                              {"image", 1024, 1, 32},
                                              {"pathfinder", 1024, 2, 8},
                                              {"pathx", 16384, 2, 8}}};

const LraShape& shape_of(const std::string& name) {
  return *std::find_if(kLraShapes.begin(), kLraShapes.end(), [&](const LraShape& s) { return name == s.name; });
}

class LraTask final : public efficiency::EfficiencyTask {
 public:
  TaskInfo info() const override {
    return TaskInfo{
        "lra", TaskKind::efficiency,
        "Long Range Arena's attention shapes (length, heads, head dim per benchmark), non-causal self attention",
        efficiency::with_input_params(
            {ParamSpec::choice("benchmark", "listops", {"listops", "text", "retrieval", "image", "pathfinder", "pathx"},
                               "listops 2000/8x64, text 4000/4x64, retrieval 4000/4x32, image 1024/1x32, "
                               "pathfinder 1024/2x8, pathx 16384/2x8 (length/heads x head dim)"),
             ParamSpec::number("scale", 1.0, 1e-6, 1.0, "multiplies the length (rounded, at least 1) for quick runs"),
             ParamSpec::integer("batch", 1, 1, 4096, "sequences per call (LRA trained with 32 to 512)"),
             ParamSpec::integer("heads", 0, 0, 1024, "query heads (0: the benchmark's)"), efficiency::dtype_param()}),
        efficiency::fidelity_metrics()};
  }

  std::optional<std::string> check(const Params& p) const override {
    return efficiency::check_inputs(p, shape_of(p.string("benchmark")).head_dim);
  }

  Problem problem(const Params& p) const override {
    const LraShape& s = shape_of(p.string("benchmark"));
    Problem pr;
    pr.batch = p.integer("batch");
    pr.heads = pr.kv_heads = p.integer("heads") ? p.integer("heads") : s.heads;
    pr.q_len = pr.kv_len = std::max<std::int64_t>(1, std::llround(static_cast<double>(s.length) * p.number("scale")));
    pr.head_dim = s.head_dim;
    efficiency::finish_problem(pr, p);
    pr.mask = make_mask("full", json::object(), pr.mask_shape());
    return pr;
  }
};

}  // namespace
ATTNBENCH_REGISTER_TASK(LraTask);
}  // namespace attnbench
