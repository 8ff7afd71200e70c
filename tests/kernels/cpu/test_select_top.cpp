// Tests of select_top, the selection behind topk, quest, moba and landmark_block: against a stable sort
// by (score descending, index ascending), over kept shares from one score to all of them (the bisection
// of the value range, the selection among the last few, the fallback for +inf), with ties, −inf and
// clustered values; and that NaN scores keep the indices distinct and in range.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/select_top.hpp"

using attnbench::kernels::kth_largest;
using attnbench::kernels::select_top;

namespace {

std::vector<std::int32_t> reference_top(const std::vector<float>& score, std::int64_t kept) {
  std::vector<std::int32_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::int32_t a, std::int32_t b) { return score[a] > score[b]; });
  idx.resize(static_cast<std::size_t>(std::min<std::int64_t>(kept, static_cast<std::int64_t>(score.size()))));
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<std::int32_t> run_select_top(const std::vector<float>& score, std::int64_t kept) {
  const std::int64_t n = static_cast<std::int64_t>(score.size());
  std::vector<float> values(score.size() + 1, std::nanf(""));  // poisoned scratch
  // Room for kept + 1 indices, as select_top asks, then guards that must stay untouched.
  const std::size_t room = static_cast<std::size_t>(std::max<std::int64_t>(kept, 0)) + 1;
  std::vector<std::int32_t> order(room + 4, -7);
  const std::int64_t m = select_top(score.data(), n, kept, values.data(), order.data());
  for (std::size_t i = room; i < order.size(); ++i) REQUIRE(order[i] == -7);
  order.resize(static_cast<std::size_t>(m));
  return order;
}

// Scores of n entries drawn from a few kinds of distribution that exercise the paths' corners.
std::vector<float> make_scores(std::int64_t n, int kind, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_int_distribution<int> small(-3, 3);
  std::vector<float> s(static_cast<std::size_t>(n));
  for (float& x : s) {
    switch (kind) {
      case 0:  // continuous
        x = normal(rng);
        break;
      case 1:  // many exact ties
        x = static_cast<float>(small(rng));
        break;
      case 2:  // continuous with −inf entries (masked or forbidden blocks)
        x = rng() % 5 == 0 ? -std::numeric_limits<float>::infinity() : normal(rng);
        break;
      case 3:  // clustered within a few ulps, and far outliers
        x = rng() % 7 == 0 ? normal(rng) * 1e30f : 1.0f + static_cast<float>(rng() % 4) * 1.1920929e-7f;
        break;
      default:  // +inf entries (the bisection's fallback)
        x = rng() % 9 == 0 ? std::numeric_limits<float>::infinity() : normal(rng);
        break;
    }
  }
  return s;
}

}  // namespace

TEST_CASE("select_top keeps the highest scores, ties to the lower index", "[select_top][methods]") {
  std::mt19937 rng(20261207);
  std::int64_t cases = 0;
  for (const std::int64_t n : {1, 2, 15, 16, 17, 33, 100, 512, 1000, 4099}) {
    for (const std::int64_t kept : {std::int64_t{0}, std::int64_t{1}, std::int64_t{3}, n / 32, n / 31 + 1, n / 8,
                                    n / 2, n - 1, n, n + 5}) {
      for (int kind = 0; kind < 5; ++kind) {
        const std::vector<float> score = make_scores(n, kind, rng);
        INFO("n " << n << " kept " << kept << " kind " << kind);
        REQUIRE(run_select_top(score, kept) == reference_top(score, std::max<std::int64_t>(kept, 0)));
        ++cases;
      }
    }
  }
  CHECK(cases == 500);
}

TEST_CASE("kth_largest is the kept-th largest score", "[select_top][methods]") {
  std::mt19937 rng(7);
  for (int kind = 0; kind < 5; ++kind)
    for (const std::int64_t n : {2, 40, 700}) {
      const std::vector<float> score = make_scores(n, kind, rng);
      std::vector<float> sorted = score, values(score.size());
      std::sort(sorted.begin(), sorted.end(), std::greater<float>());
      for (std::int64_t kept = 1; kept < n; kept += std::max<std::int64_t>(1, n / 17)) {
        INFO("n " << n << " kept " << kept << " kind " << kind);
        REQUIRE(kth_largest(score.data(), n, kept, values.data()) == sorted[static_cast<std::size_t>(kept - 1)]);
      }
    }
}

TEST_CASE("select_top with NaN scores returns distinct indices in range", "[select_top][methods]") {
  std::mt19937 rng(11);
  for (const std::int64_t n : {64, 512}) {
    std::vector<float> score = make_scores(n, 0, rng);
    for (std::int64_t j = 0; j < n; j += 3) score[static_cast<std::size_t>(j)] = std::nanf("");
    for (const std::int64_t kept : {std::int64_t{1}, n / 4, n - 1}) {
      std::vector<std::int32_t> got = run_select_top(score, kept);
      CHECK(static_cast<std::int64_t>(got.size()) <= kept);
      for (std::size_t i = 0; i < got.size(); ++i) {
        REQUIRE(got[i] >= 0);
        REQUIRE(got[i] < n);
        if (i > 0) REQUIRE(got[i] > got[i - 1]);
      }
    }
  }
}
