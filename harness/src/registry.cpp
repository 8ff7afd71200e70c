// The method and task registries that plugins add themselves to, and the defaults of the Method interface.
#include <cmath>
#include <stdexcept>

#include "attnbench/method.hpp"
#include "attnbench/task.hpp"

namespace attnbench {

std::string to_string(Family f) {
  switch (f) {
    case Family::exact:
      return "exact";
    case Family::sparse_static:
      return "sparse-static";
    case Family::sparse_dynamic:
      return "sparse-dynamic";
    case Family::linear:
      return "linear/kernelized";
    case Family::low_rank:
      return "low-rank";
    case Family::decode:
      return "decode";
    case Family::distributed:
      return "distributed";
  }
  return "?";
}

Support Method::supports(const Problem& p, const Params&, const Device& d) const {
  const MethodInfo mi = info();
  bool backend = false;
  for (const auto& b : mi.backends) backend |= (d.is_cpu() ? b == "cpu" : b == "cuda");
  if (!backend) return Support::no(mi.name + " has no " + (d.is_cpu() ? "cpu" : "cuda") + " backend");
  if (p.kv_heads < 1 || p.heads % p.kv_heads != 0)
    return Support::no("heads (" + std::to_string(p.heads) + ") must be a multiple of kv_heads (" +
                       std::to_string(p.kv_heads) + ")");
  return Support::yes();
}
Support DeviceOnlyMethod::supports(const Problem& p, const Params& params, const Device& d) const {
  const std::string name = info().name;
  if (d.is_cpu()) return Support::no(name + " runs on CUDA devices only; run it with --device cuda");
  if (const DeviceImpl* impl = MethodRegistry::instance().impl(name, d.kind)) return impl->supports(p, params, d);
  return Support::no(name + " has no implementation for " + d.to_string() + " in this build");
}

std::unique_ptr<Plan> DeviceOnlyMethod::plan(const Problem&, const Params&, const Device& d) const {
  throw std::logic_error(info().name + " has no plan for " + d.to_string() +
                         ": it runs through its CUDA implementation (--device cuda)");
}

double Method::flops(const Problem& p, const Params&) const { return attention_flops(p); }
double Method::bytes(const Problem& p, const Params&) const { return attention_bytes(p); }

MethodRegistry& MethodRegistry::instance() {
  static MethodRegistry r;
  return r;
}
void MethodRegistry::add(std::unique_ptr<Method> m) {
  const std::string name = m->info().name;
  if (methods_.count(name)) throw std::logic_error("method '" + name + "' registered twice");
  methods_.emplace(name, std::move(m));
}
const Method* MethodRegistry::find(const std::string& name) const {
  auto it = methods_.find(name);
  return it == methods_.end() ? nullptr : it->second.get();
}
std::vector<std::string> MethodRegistry::names() const {
  std::vector<std::string> v;
  for (const auto& [n, _] : methods_) v.push_back(n);
  return v;
}
void MethodRegistry::add_impl(const std::string& method, Device::Kind kind, std::unique_ptr<DeviceImpl> impl) {
  auto key = std::make_pair(method, kind);
  if (impls_.count(key)) throw std::logic_error("device implementation of '" + method + "' registered twice");
  impls_.emplace(key, std::move(impl));
}
const DeviceImpl* MethodRegistry::impl(const std::string& method, Device::Kind kind) const {
  auto it = impls_.find({method, kind});
  return it == impls_.end() ? nullptr : it->second.get();
}
std::vector<std::string> MethodRegistry::backends(const std::string& method) const {
  std::vector<std::string> v;
  if (const Method* m = find(method))
    for (const auto& b : m->info().backends)
      if (b == "cpu") v.push_back(b);
  if (impl(method, Device::Kind::cuda)) v.push_back("cuda");
  return v;
}

TaskRegistry& TaskRegistry::instance() {
  static TaskRegistry r;
  return r;
}
void TaskRegistry::add(std::unique_ptr<Task> t) {
  const std::string name = t->info().name;
  if (tasks_.count(name)) throw std::logic_error("task '" + name + "' registered twice");
  tasks_.emplace(name, std::move(t));
}
const Task* TaskRegistry::find(const std::string& name) const {
  auto it = tasks_.find(name);
  return it == tasks_.end() ? nullptr : it->second.get();
}
std::vector<std::string> TaskRegistry::names() const {
  std::vector<std::string> v;
  for (const auto& [n, _] : tasks_) v.push_back(n);
  return v;
}

Fidelity fidelity(const Tensor& out, const Tensor& reference) {
  if (out.numel() != reference.numel()) throw std::invalid_argument("fidelity: output and reference differ in size");
  Fidelity f;
  double diff2 = 0, ref2 = 0;
  std::int64_t compared = 0;
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    const double o = out.get(i), r = reference.get(i);
    if (!std::isfinite(o)) f.finite = false;
    if (std::isnan(r)) continue;  // a row the sampled oracle did not compute
    ++compared;
    const double d = o - r;
    diff2 += d * d;
    ref2 += r * r;
    f.max_abs = std::max(f.max_abs, std::abs(d));
  }
  f.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  if (!f.finite || (compared == 0 && out.numel() > 0)) f.rel_l2 = f.max_abs = std::nan("");
  return f;
}

}  // namespace attnbench
