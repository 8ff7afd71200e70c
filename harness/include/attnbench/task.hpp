// The plugin interface of a task: parameters -> a task instance (problem + inputs) -> metrics of an output.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attnbench/params.hpp"
#include "attnbench/problem.hpp"

namespace attnbench {

enum class TaskKind { efficiency, retrieval };

struct MetricSpec {
  std::string name;
  std::string unit;  // "" for dimensionless
  bool higher_is_better = false;
  std::string doc;
};

using Metrics = std::vector<std::pair<std::string, double>>;

struct TaskInfo {
  std::string name;
  TaskKind kind = TaskKind::efficiency;
  std::string summary;
  std::vector<ParamSpec> params;
  std::vector<MetricSpec> metrics;
};

// One concrete instance: the problem, its inputs, and whatever the task needs to score an output.
// Tasks with more to remember (a needle's position) derive from it.
struct TaskInstance {
  virtual ~TaskInstance() = default;
  Problem problem;
  Inputs inputs;
  // The oracle computes every check_every-th query row (and the last) of each (batch, head) and leaves
  // the others NaN; fidelity() compares only the rows it computed. 1: every row. A long GPU cell's
  // float64 oracle on the CPU would otherwise cost more than the whole cell.
  std::int64_t check_every = 1;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual TaskInfo info() const = 0;
  // Checks that span several parameters (heads divisible by kv_heads, ...): a sentence, or nothing.
  virtual std::optional<std::string> check(const Params&) const { return std::nullopt; }
  // The problem alone, without inputs: cheap, used to ask methods whether they support it.
  virtual Problem problem(const Params& params) const = 0;
  // Deterministic in (params, seed).
  virtual std::unique_ptr<TaskInstance> make(const Params& params, std::uint64_t seed) const = 0;
  virtual bool needs_reference() const { return kind() == TaskKind::efficiency; }
  // `reference` is the float64 oracle's output for the same inputs when needs_reference().
  virtual Metrics score(const TaskInstance& inst, const Tensor& out, const Tensor* reference) const = 0;
  TaskKind kind() const { return info().kind; }
};

class TaskRegistry {
 public:
  static TaskRegistry& instance();
  void add(std::unique_ptr<Task> t);
  const Task* find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, std::unique_ptr<Task>> tasks_;
};

template <class T>
struct TaskRegistration {
  TaskRegistration() { TaskRegistry::instance().add(std::make_unique<T>()); }
};

// Fidelity of an output against the float64 reference: ‖out−ref‖₂/‖ref‖₂ and max |out−ref|.
struct Fidelity {
  double rel_l2 = 0, max_abs = 0;
  bool finite = true;
};
// ‖out − ref‖₂/‖ref‖₂ and max |out − ref| over the elements where the reference is not NaN (a sampled
// oracle leaves the rows it skipped NaN); any non-finite `out` element anywhere makes both NaN.
Fidelity fidelity(const Tensor& out, const Tensor& reference);

}  // namespace attnbench

#define ATTNBENCH_REGISTER_TASK(T) \
  static const ::attnbench::TaskRegistration<T> attnbench_task_registration_##T {}
