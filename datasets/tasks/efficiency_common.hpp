// What the efficiency tasks (cab, lra, masks, decode) share: the choice of inputs, the dtype/scale
// finishing of a problem, and fidelity scoring against the float64 oracle.
#pragma once
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnbench/task.hpp"
#include "datasets/generators.hpp"

namespace attnbench::efficiency {

// `inputs` and the `structured` generator's knobs (docs/datasets.md defines them); appended to a task's params.
inline std::vector<ParamSpec> input_params() {
  const datasets::StructuredSpec d;
  return {
      ParamSpec::choice("inputs", "gaussian", {"gaussian", "structured", "hdf5"},
                        "gaussian: i.i.d. N(0,1); structured: sink, drift, outliers, RoPE; hdf5: a capture file"),
      ParamSpec::choice("inputs_file", "", {},
                        "HDF5 capture of Q, K, V (inputs = hdf5 only; layout in docs/datasets.md)"),
      ParamSpec::number("drift", d.drift, 0.0, 0.999999, "structured: AR(1) coefficient between neighbouring tokens"),
      ParamSpec::number("sink_scale", d.sink_scale, 1e-3, 1e3, "structured: norm of the sink key over the others'"),
      ParamSpec::integer("outliers", d.outliers, 0, 1024, "structured: outlier channels of Q and K per kv head"),
      ParamSpec::number("outlier_scale", d.outlier_scale, 0.0, 1e3, "structured: magnitude factor of outlier channels"),
      ParamSpec::number("rope_base", d.rope_base, 0.0, 1e9, "structured: RoPE base (0: no rotation)")};
}

inline std::vector<ParamSpec> with_input_params(std::vector<ParamSpec> own) {
  for (ParamSpec& s : input_params()) own.push_back(std::move(s));
  return own;
}

inline std::vector<MetricSpec> fidelity_metrics() {
  return {MetricSpec{"rel_l2", "", false, "‖out − ref‖₂ / ‖ref‖₂ against the float64 oracle"},
          MetricSpec{"max_abs", "", false, "max |out − ref|"}};
}

// Refusals about the inputs; `p` holds every parameter of input_params().
inline std::optional<std::string> check_inputs(const Params& p, std::int64_t head_dim) {
  const bool hdf5 = p.string("inputs") == "hdf5";
  if (hdf5 && p.string("inputs_file").empty()) return "inputs = hdf5 needs inputs_file, the path of a capture file";
  if (!hdf5 && !p.string("inputs_file").empty())
    return "inputs_file is read only when inputs = hdf5 (inputs is " + p.string("inputs") + ")";
  if (p.string("inputs") == "structured" && p.integer("outliers") > 0 && head_dim < p.integer("outliers"))
    return "outliers (" + std::to_string(p.integer("outliers")) + ") exceeds head_dim (" + std::to_string(head_dim) +
           ")";
  return std::nullopt;
}

inline datasets::StructuredSpec structured_spec(const Params& p) {
  datasets::StructuredSpec s;
  s.drift = p.number("drift");
  s.sink_scale = p.number("sink_scale");
  s.outliers = p.integer("outliers");
  s.outlier_scale = p.number("outlier_scale");
  s.rope_base = p.number("rope_base");
  return s;
}

inline Inputs make_inputs(const Problem& pr, const Params& p, std::uint64_t seed) {
  const std::string kind = p.string("inputs");
  if (kind == "structured") return datasets::structured_inputs(pr, seed, structured_spec(p));
  if (kind == "hdf5") return datasets::hdf5_inputs(pr, p.string("inputs_file"));
  return datasets::gaussian_inputs(pr, seed);
}

// Sets value_dim = head_dim, the scale 1/√head_dim and the dtype.
inline void finish_problem(Problem& pr, const Params& p) {
  pr.value_dim = pr.head_dim;
  pr.scale = 1.0 / std::sqrt(static_cast<double>(pr.head_dim));
  pr.dtype = parse_dtype(p.string("dtype"));
}

inline Metrics score_fidelity(const Tensor& out, const Tensor* reference) {
  const Fidelity f = fidelity(out, *reference);
  return {{"rel_l2", f.rel_l2}, {"max_abs", f.max_abs}};
}

// A task whose instance is the problem plus inputs from input_params(), scored by fidelity.
class EfficiencyTask : public Task {
 public:
  std::unique_ptr<TaskInstance> make(const Params& p, std::uint64_t seed) const override {
    auto inst = std::make_unique<TaskInstance>();
    inst->problem = problem(p);
    inst->inputs = make_inputs(inst->problem, p, seed);
    return inst;
  }
  Metrics score(const TaskInstance&, const Tensor& out, const Tensor* reference) const override {
    return score_fidelity(out, reference);
  }
};

inline ParamSpec dtype_param() {
  return ParamSpec::choice("dtype", "fp32", {"fp32", "bf16"}, "storage type of Q, K, V and the output");
}

}  // namespace attnbench::efficiency
