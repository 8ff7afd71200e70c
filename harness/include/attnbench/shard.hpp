// Sharded suites: the I-th of N disjoint, deterministic slices of a manifest's cells, balanced by
// estimated cost rather than by count, for job arrays on a cluster (docs/cluster.md).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "attnbench/manifest.hpp"

namespace attnbench {

struct Shard {
  int index = 1;  // 1-based, as written on the command line: --shard 2/3
  int count = 1;
  bool whole() const { return count == 1; }
  std::string to_string() const { return std::to_string(index) + "/" + std::to_string(count); }
};

// "I/N" with 1 <= I <= N; throws std::invalid_argument naming what was expected.
Shard parse_shard(const std::string& spec);

// A cell's estimated cost in seconds on one CPU: its method's FLOPs at 100 GFLOP/s plus its bytes at
// 10 GB/s plus 0.05 s of fixed overhead; a cell the method does not support, or whose problem cannot be
// built, costs the overhead alone. Only the ratios matter.
double estimate_cost(const Cell& cell);

// Indices into `cells` of shard s, in manifest order. Cells are dealt greedily, most expensive first
// (ties by index), each to the shard with the least cost so far (ties to the lowest shard): the shards
// are disjoint, cover every cell, and depend only on the cells and N.
std::vector<std::size_t> select_shard(const std::vector<Cell>& cells, const std::vector<double>& costs, Shard s);

}  // namespace attnbench
