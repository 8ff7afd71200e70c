// Tests of the "document" mask: exact allowed sets by hand (given and seeded lengths, causal and full,
// bottom-right queries), closed-form tiles against the element-wise definition, bad lengths refused.
#include "support/sparse_patterns.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using Keys = std::vector<std::int64_t>;

TEST_CASE("document mask: allowed sets by hand", "[document][masks][eff]") {
  const auto causal = pattern_mask("document", {{"doc_lens", "3,2,3"}}, 8, 8);
  CHECK(allowed_keys(*causal, 0) == Keys{0});
  CHECK(allowed_keys(*causal, 2) == Keys{0, 1, 2});
  CHECK(allowed_keys(*causal, 3) == Keys{3});
  CHECK(allowed_keys(*causal, 4) == Keys{3, 4});
  CHECK(allowed_keys(*causal, 5) == Keys{5});
  CHECK(allowed_keys(*causal, 7) == Keys{5, 6, 7});
  const auto full = pattern_mask("document", {{"doc_lens", "3,2,3"}, {"causal", false}}, 8, 8);
  CHECK(allowed_keys(*full, 0) == Keys{0, 1, 2});
  CHECK(allowed_keys(*full, 3) == Keys{3, 4});
  CHECK(allowed_keys(*full, 6) == Keys{5, 6, 7});
  // Three queries at positions 5..7 of the same packed sequence; tokens past the lengths form a document.
  const auto tail = pattern_mask("document", {{"doc_lens", "5"}}, 3, 8);
  CHECK(allowed_keys(*tail, 0) == Keys{5});
  CHECK(allowed_keys(*tail, 2) == Keys{5, 6, 7});
  // Causal within documents of 3, 2 and 3 tokens: 6 + 3 + 6 allowed pairs.
  CHECK(pattern_mask("document", {{"doc_lens", "3,2,3"}}, 8, 8)->density() == Approx(15.0 / 64));
}

TEST_CASE("document mask: the seeded split has the asked number of documents", "[document][masks][eff]") {
  auto starts = [](const Mask& m) {
    Keys s;  // a row whose first allowed key is itself starts a document (causal)
    for (std::int64_t q = 0; q < m.shape().q_len; ++q)
      if (allowed_keys(m, q).front() == q) s.push_back(q);
    return s;
  };
  const auto a = pattern_mask("document", {{"documents", 5}, {"seed", 3}}, 100, 100);
  const auto b = pattern_mask("document", {{"documents", 5}, {"seed", 3}}, 100, 100);
  const auto c = pattern_mask("document", {{"documents", 5}, {"seed", 4}}, 100, 100);
  CHECK(starts(*a).size() == 5);
  CHECK(starts(*a) == starts(*b));
  CHECK(starts(*a) != starts(*c));
  CHECK(starts(*pattern_mask("document", {{"documents", 7}}, 7, 7)) == Keys{0, 1, 2, 3, 4, 5, 6});
  CHECK_THROWS_WITH(pattern_mask("document", {{"documents", 9}}, 8, 8), Catch::Contains("do not fit"));
  CHECK_THROWS_WITH(pattern_mask("document", {{"doc_lens", "3,x"}}, 8, 8), Catch::Contains("positive integers"));
  CHECK_THROWS_WITH(pattern_mask("document", {{"doc_lens", "3,0,5"}}, 8, 8), Catch::Contains("positive integers"));
}

TEST_CASE("document mask: tile() agrees with the element-wise definition", "[document][masks][eff]") {
  std::uint64_t seed = 11;
  for (const json& params :
       {json{{"doc_lens", "3,2,3"}}, json{{"doc_lens", "1,1,40,2"}, {"causal", false}},
        json{{"documents", 6}, {"seed", 1}}, json{{"documents", 3}, {"causal", false}}, json{{"documents", 1}}})
    for (const auto& [lq, lk] : std::vector<std::pair<int, int>>{{8, 8}, {37, 37}, {20, 53}, {53, 20}, {130, 130}}) {
      const auto m = pattern_mask("document", params, lq, lk);
      check_tiles_against_elements(*m, seed++);
      CHECK(m->density() == Approx(counted_density(*m)));
    }
}
