// A test plugin for the watchdog (tests/harness/test_watchdog.cpp): `test_hang` is the registered `flash`
// method, except that with hang=1 its plan and with hang=2 its first run never return; `test_hang_task`
// is the `synthetic` task, except that with hang=1 building its instance never returns. Never installed.
#include <attnbench/method.hpp>
#include <attnbench/task.hpp>
#include <chrono>
#include <thread>

namespace {

using namespace attnbench;

[[noreturn]] void hang_forever() {
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

const Method& flash() { return *MethodRegistry::instance().find("flash"); }

class HangPlan final : public Plan {
 public:
  HangPlan(std::unique_ptr<Plan> inner, bool hang_in_run) : inner_(std::move(inner)), hang_in_run_(hang_in_run) {}
  void run(const Inputs& in, Tensor& out) override {
    if (hang_in_run_) hang_forever();
    inner_->run(in, out);
  }

 private:
  std::unique_ptr<Plan> inner_;
  bool hang_in_run_;
};

class HangMethod final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo mi;
    mi.name = "test_hang";
    mi.family = Family::exact;
    mi.summary = "test fixture: flash, or a plan (hang=1) or run (hang=2) that never returns";
    mi.reference = "tests/plugins/hang_method.cpp";
    mi.params = {ParamSpec::integer("hang", 0, 0, 2, "0: never; 1: in plan; 2: in the first run")};
    return mi;
  }
  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device& d) const override {
    const auto hang = params.integer("hang");
    if (hang == 1) hang_forever();
    return std::make_unique<HangPlan>(flash().plan(p, complete_params(flash().info().params, json::object()), d),
                                      hang == 2);
  }
};

ATTNBENCH_REGISTER_METHOD(HangMethod);

const Task& synthetic() { return *TaskRegistry::instance().find("synthetic"); }

// synthetic's parameters without `hang`.
Params without_hang(const Params& p) {
  json v = p.values();
  v.erase("hang");
  return Params(v);
}

class HangTask final : public Task {
 public:
  TaskInfo info() const override {
    TaskInfo ti = synthetic().info();
    ti.name = "test_hang_task";
    ti.summary = "test fixture: synthetic, or an instance (hang=1) that is never built";
    ti.params.push_back(ParamSpec::integer("hang", 0, 0, 1, "1: make() never returns"));
    return ti;
  }
  std::optional<std::string> check(const Params& p) const override { return synthetic().check(without_hang(p)); }
  Problem problem(const Params& p) const override { return synthetic().problem(without_hang(p)); }
  std::unique_ptr<TaskInstance> make(const Params& p, std::uint64_t seed) const override {
    if (p.integer("hang") == 1) hang_forever();
    return synthetic().make(without_hang(p), seed);
  }
  Metrics score(const TaskInstance& inst, const Tensor& out, const Tensor* reference) const override {
    return synthetic().score(inst, out, reference);
  }
};

ATTNBENCH_REGISTER_TASK(HangTask);

}  // namespace
