// Listings of the registries: names, families, parameters with defaults and ranges, backends, papers.
#include "attnbench/catalog.hpp"

#include <sstream>

#include "attnbench/mask.hpp"
#include "attnbench/method.hpp"
#include "attnbench/task.hpp"

namespace attnbench {

namespace {
void print_params(std::ostream& os, const std::vector<ParamSpec>& specs) {
  if (specs.empty()) os << "  parameters: none\n";
  for (const auto& s : specs) os << "  - " << s.describe() << "\n";
}
std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}
}  // namespace

std::string list_methods() {
  std::ostringstream os;
  for (const auto& name : MethodRegistry::instance().names()) {
    const MethodInfo mi = MethodRegistry::instance().find(name)->info();
    os << mi.name << " [" << to_string(mi.family) << "; backends: " << joined(MethodRegistry::instance().backends(name)) << "]\n  " << mi.summary
       << "\n";
    if (!mi.reference.empty()) os << "  reference: " << mi.reference << "\n";
    print_params(os, mi.params);
  }
  return os.str();
}

std::string list_tasks() {
  std::ostringstream os;
  for (const auto& name : TaskRegistry::instance().names()) {
    const TaskInfo ti = TaskRegistry::instance().find(name)->info();
    os << ti.name << " [" << (ti.kind == TaskKind::efficiency ? "efficiency" : "retrieval") << "]\n  " << ti.summary
       << "\n";
    print_params(os, ti.params);
    std::vector<std::string> metrics;
    for (const auto& mt : ti.metrics) metrics.push_back(mt.name);
    os << "  metrics: " << joined(metrics) << "\n";
  }
  return os.str();
}

std::string list_masks() {
  std::ostringstream os;
  for (const MaskKind* k : MaskRegistry::instance().all()) {
    os << k->name << "\n  " << k->doc << "\n";
    print_params(os, k->params);
  }
  return os.str();
}

}  // namespace attnbench
