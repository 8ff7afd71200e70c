// Shards of a suite: --shard I/N parsing, and cost-balanced, disjoint, covering, deterministic selection.
#include <algorithm>
#include <catch2/catch.hpp>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>

#include "attnbench/manifest.hpp"
#include "attnbench/shard.hpp"

using namespace attnbench;

namespace {

std::vector<Cell> cells_of(std::size_t n) {
  std::vector<Cell> cells(n);
  for (std::size_t i = 0; i < n; ++i) cells[i].index = static_cast<std::int64_t>(i);
  return cells;
}

double load_of(const std::vector<std::size_t>& picked, const std::vector<double>& costs) {
  double s = 0;
  for (std::size_t i : picked) s += costs[i];
  return s;
}

// The most expensive shard's cost when the cells are split N ways by count, in manifest order: the first
// ceil(n/N) cells to shard 1, and so on.
double contiguous_count_split_max(const std::vector<double>& costs, int n) {
  const std::size_t per = (costs.size() + n - 1) / n;
  double worst = 0;
  for (std::size_t a = 0; a < costs.size(); a += per)
    worst = std::max(worst, std::accumulate(costs.begin() + a, costs.begin() + std::min(costs.size(), a + per), 0.0));
  return worst;
}

// ... and round robin: cell i to shard i mod N.
double round_robin_max(const std::vector<double>& costs, int n) {
  std::vector<double> load(n, 0.0);
  for (std::size_t i = 0; i < costs.size(); ++i) load[i % n] += costs[i];
  return *std::max_element(load.begin(), load.end());
}

}  // namespace

TEST_CASE("parse_shard accepts I/N with 1 <= I <= N", "[shard]") {
  const Shard s = parse_shard("2/3");
  CHECK(s.index == 2);
  CHECK(s.count == 3);
  CHECK_FALSE(s.whole());
  CHECK(s.to_string() == "2/3");
  CHECK(parse_shard("1/1").whole());
  CHECK(parse_shard("3/3").index == 3);
  CHECK(parse_shard("12/40").count == 40);
}

TEST_CASE("parse_shard refuses what is not I/N with 1 <= I <= N, saying what was expected", "[shard]") {
  for (const char* bad : {"0/3", "4/3", "1/0", "a/b", "1/", "/3", " 1/2", "1/ 2", "1/2 ", "+1/2", "1/2x", "1.5/3",
                          "-1/3", "1", "", "1/2/3", "99999999999/3"}) {
    INFO("'" << bad << "'");
    try {
      parse_shard(bad);
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(e.what(), Catch::Contains(std::string("bad shard '") + bad + "'") &&
                               Catch::Contains("expected I/N with 1 <= I <= N"));
    }
  }
}

TEST_CASE("select_shard: the shards are disjoint, cover every cell, keep manifest order, and are deterministic",
          "[shard]") {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> cost(0.01, 5.0);
  for (const std::size_t n_cells : {0, 1, 2, 7, 31, 100}) {
    const std::vector<Cell> cells = cells_of(n_cells);
    std::vector<double> costs(n_cells);
    for (double& c : costs) c = cost(rng);
    if (n_cells > 5) costs[3] = costs[5];  // ties are dealt deterministically too
    for (const int n : {1, 2, 3, 5, 8}) {
      INFO(n_cells << " cells, " << n << " shards");
      std::vector<int> owner(n_cells, 0);
      for (int i = 1; i <= n; ++i) {
        const std::vector<std::size_t> mine = select_shard(cells, costs, Shard{i, n});
        CHECK(std::is_sorted(mine.begin(), mine.end()));
        CHECK(std::adjacent_find(mine.begin(), mine.end()) == mine.end());
        CHECK(mine == select_shard(cells, costs, Shard{i, n}));
        for (std::size_t c : mine) {
          REQUIRE(c < n_cells);
          owner[c] += 1;
        }
        // With at least N cells, no shard is empty (the N most expensive go one to each).
        if (n_cells >= static_cast<std::size_t>(n)) CHECK_FALSE(mine.empty());
      }
      CHECK(std::all_of(owner.begin(), owner.end(), [](int k) { return k == 1; }));
    }
  }
  CHECK_THROWS_AS(select_shard(cells_of(3), {1.0, 2.0}, Shard{1, 2}), std::invalid_argument);
}

TEST_CASE("select_shard balances by estimated cost, not by count: within the largest cost of optimal", "[shard]") {
  // Three expensive cells first, then nine cheap ones: split by count in manifest order, the first shard
  // gets every expensive cell; dealt round robin with the expensive ones every third cell, likewise.
  for (const std::vector<double>& costs :
       {std::vector<double>{10, 10, 10, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        std::vector<double>{10, 1, 1, 10, 1, 1, 10, 1, 1, 1, 1, 1},
        std::vector<double>{50, 2, 3, 7, 7, 1, 1, 1, 30, 30, 4, 4, 4, 4, 9, 0.5, 0.5, 12, 12, 12}}) {
    const int n = 3;
    const std::vector<Cell> cells = cells_of(costs.size());
    const double total = std::accumulate(costs.begin(), costs.end(), 0.0);
    const double largest = *std::max_element(costs.begin(), costs.end());
    const double lower_bound = std::max(total / n, largest);  // no split of these cells does better
    double worst = 0, best = total;
    std::size_t most_cells = 0, fewest_cells = costs.size();
    for (int i = 1; i <= n; ++i) {
      const auto mine = select_shard(cells, costs, Shard{i, n});
      worst = std::max(worst, load_of(mine, costs));
      best = std::min(best, load_of(mine, costs));
      most_cells = std::max(most_cells, mine.size());
      fewest_cells = std::min(fewest_cells, mine.size());
    }
    INFO("costs: " << Catch::Detail::stringify(costs) << "; LPT max " << worst << ", lower bound " << lower_bound);
    // Longest processing time first is within the largest single cost of the optimum (and of the bound).
    CHECK(worst <= lower_bound + largest);
    CHECK(worst >= lower_bound - 1e-12);
  }
  // The first two: the optimum is 13 per shard (one expensive, three cheap), and LPT finds it, where
  // splitting by count gives one shard 31 or 30.
  for (const std::vector<double>& costs : {std::vector<double>{10, 10, 10, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                                           std::vector<double>{10, 1, 1, 10, 1, 1, 10, 1, 1, 1, 1, 1}}) {
    const std::vector<Cell> cells = cells_of(costs.size());
    for (int i = 1; i <= 3; ++i) {
      const auto mine = select_shard(cells, costs, Shard{i, 3});
      CHECK(load_of(mine, costs) == 13.0);
      CHECK(mine.size() == 4);
    }
    CHECK(std::max(contiguous_count_split_max(costs, 3), round_robin_max(costs, 3)) >= 30.0);
  }
  // Balanced by cost means unbalanced by count where costs differ: one costly cell is a shard by itself.
  const std::vector<double> skewed{100, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const auto first = select_shard(cells_of(10), skewed, Shard{1, 2});
  const auto second = select_shard(cells_of(10), skewed, Shard{2, 2});
  CHECK(first == std::vector<std::size_t>{0});
  CHECK(second.size() == 9);
}

TEST_CASE("estimate_cost grows with the work of a cell, and unknown cells cost the overhead", "[shard]") {
  const Manifest m = parse_manifest(R"({"name": "costs", "seed": 1,
    "methods": [{"name": "dense"}, {"name": "flash", "params": {"block_q": 16, "block_k": 16}}],
    "tasks": [{"name": "synthetic", "params": {"batch": 1, "heads": 2, "head_dim": 32},
               "axes": {"seq_len": [64, 1024, 16384]}}]})",
                                    "");
  const std::vector<Cell> cells = expand(m);
  REQUIRE(cells.size() == 6);
  for (const std::string label : {"dense", "flash"}) {
    std::vector<double> costs;
    for (const Cell& c : cells)
      if (c.method_label == label) costs.push_back(estimate_cost(c));
    REQUIRE(costs.size() == 3);
    INFO(label);
    CHECK(costs[0] > 0.05);  // the fixed overhead and some work
    CHECK(costs[0] < costs[1]);
    CHECK(costs[1] < costs[2]);
    CHECK(costs[2] > 10 * costs[0]);
  }
  Cell unknown = cells.front();
  unknown.method_name = "no_such_method";
  CHECK(estimate_cost(unknown) == 0.05);

  // The whole suite as 3 shards: every cell once, and the costly cells spread out.
  std::vector<double> costs;
  for (const Cell& c : cells) costs.push_back(estimate_cost(c));
  std::set<std::size_t> seen;
  for (int i = 1; i <= 3; ++i)
    for (std::size_t k : select_shard(cells, costs, Shard{i, 3})) CHECK(seen.insert(k).second);
  CHECK(seen.size() == cells.size());
  // The two 16K cells (indices 4 and 5: the most expensive by far) land in different shards.
  REQUIRE(cells[4].task_params.integer("seq_len") == 16384);
  REQUIRE(cells[5].task_params.integer("seq_len") == 16384);
  const auto one = select_shard(cells, costs, Shard{1, 3});
  const auto two = select_shard(cells, costs, Shard{2, 3});
  CHECK(std::count(one.begin(), one.end(), 4) + std::count(one.begin(), one.end(), 5) == 1);
  CHECK(std::count(two.begin(), two.end(), 4) + std::count(two.begin(), two.end(), 5) == 1);
}
