// Shard selection: longest-processing-time-first dealing of cells over N shards.
#include "attnbench/shard.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "attnbench/method.hpp"
#include "attnbench/task.hpp"

namespace attnbench {

Shard parse_shard(const std::string& spec) {
  const auto bad = [&] {
    return std::invalid_argument("bad shard '" + spec + "' (expected I/N with 1 <= I <= N, e.g. 2/3)");
  };
  const auto slash = spec.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == spec.size()) throw bad();
  // Digits only: std::stoi alone would take " 1", "+1" and "1/ 2".
  if (spec.find_first_not_of("0123456789/") != std::string::npos) throw bad();
  Shard s;
  try {
    std::size_t used = 0;
    s.index = std::stoi(spec.substr(0, slash), &used);
    if (used != slash) throw bad();
    s.count = std::stoi(spec.substr(slash + 1), &used);
    if (used != spec.size() - slash - 1) throw bad();
  } catch (const std::invalid_argument&) {
    throw bad();
  } catch (const std::out_of_range&) {
    throw bad();
  }
  if (s.count < 1 || s.index < 1 || s.index > s.count) throw bad();
  return s;
}

double estimate_cost(const Cell& cell) {
  constexpr double overhead_s = 0.05, flop_rate = 100e9, byte_rate = 10e9;
  const Method* m = MethodRegistry::instance().find(cell.method_name);
  const Task* t = TaskRegistry::instance().find(cell.task_name);
  if (!m || !t) return overhead_s;
  try {
    const Problem p = t->problem(cell.task_params);
    if (!m->supports(p, cell.method_params, Device{})) return overhead_s;
    return overhead_s + m->flops(p, cell.method_params) / flop_rate + m->bytes(p, cell.method_params) / byte_rate;
  } catch (const std::exception&) {
    return overhead_s;
  }
}

std::vector<std::size_t> select_shard(const std::vector<Cell>& cells, const std::vector<double>& costs, Shard s) {
  if (costs.size() != cells.size()) throw std::invalid_argument("select_shard: one cost per cell expected");
  std::vector<std::size_t> order(cells.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });
  std::vector<double> load(static_cast<std::size_t>(s.count), 0.0);
  std::vector<std::size_t> mine;
  for (std::size_t i : order) {
    const auto least = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[least] += costs[i];
    if (static_cast<int>(least) == s.index - 1) mine.push_back(i);
  }
  std::sort(mine.begin(), mine.end());
  return mine;
}

}  // namespace attnbench
