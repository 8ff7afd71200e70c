// Tests of the efficiency tasks cab, lra, masks, decode [eff]: the problem each parameter set gives,
// the masks task's mask being the named kind, refusals of inconsistent parameters, determinism of
// instances, and fidelity scoring against the float64 oracle.
#include <catch2/catch.hpp>
#include <cstring>

#include "attnbench/task.hpp"
#include "support/problems.hpp"
#include "support/sparse_patterns.hpp"

using namespace attnbench;

namespace {

const Task& task_named(const std::string& name) {
  const Task* t = TaskRegistry::instance().find(name);
  if (!t) throw std::runtime_error("task '" + name + "' is not registered");
  return *t;
}
Params params_of(const std::string& task, const json& given) {
  return complete_params(task_named(task).info().params, given);
}
Problem problem_of(const std::string& task, const json& given) {
  const Params p = params_of(task, given);
  const auto err = task_named(task).check(p);
  INFO(task << " " << given.dump() << ": " << err.value_or(""));
  REQUIRE_FALSE(err);
  return task_named(task).problem(p);
}
std::string refusal(const std::string& task, const json& given) {
  return task_named(task).check(params_of(task, given)).value_or("");
}

}  // namespace

TEST_CASE("cab: the four patterns give the shapes and masks they name", "[eff][tasks]") {
  Problem p = problem_of("cab", {{"pattern", "self_full"}, {"seq_len", 256}, {"heads", 2}, {"head_dim", 32}});
  CHECK(p.q_len == 256);
  CHECK(p.kv_len == 256);
  CHECK_FALSE(p.cross);
  CHECK(p.mask->is_full());
  CHECK(p.heads == 2);
  CHECK(p.kv_heads == 2);
  CHECK(p.scale == Approx(1.0 / std::sqrt(32.0)));
  p = problem_of("cab", {{"pattern", "self_causal"}, {"seq_len", 256}});
  CHECK(p.causal());
  CHECK_FALSE(p.cross);
  p = problem_of("cab", {{"pattern", "cross_full"}, {"seq_len", 256}, {"kv_len", 512}});
  CHECK(p.cross);
  CHECK(p.kv_len == 512);
  CHECK(p.mask->is_full());
  p = problem_of("cab", {{"pattern", "cross_causal"}, {"seq_len", 128}});
  CHECK(p.cross);
  CHECK(p.kv_len == 128);
  CHECK(p.causal());

  CHECK_THAT(refusal("cab", {{"pattern", "self_full"}, {"kv_len", 512}}),
             Catch::Contains("kv_len is for the cross patterns"));
  CHECK_THAT(refusal("cab", {{"pattern", "cross_causal"}, {"seq_len", 512}, {"kv_len", 256}}),
             Catch::Contains("leaves the first queries no key"));
  CHECK(refusal("cab", {{"pattern", "cross_full"}, {"seq_len", 512}, {"kv_len", 256}}).empty());
}

TEST_CASE("lra: each benchmark has LRA's length, heads and head dim, scale shortens it", "[eff][tasks]") {
  struct Row {
    const char* name;
    std::int64_t len, heads, dim;
  };
  for (const Row& r : {Row{"listops", 2000, 8, 64}, Row{"text", 4000, 4, 64}, Row{"retrieval", 4000, 4, 32},
                       Row{"image", 1024, 1, 32}, Row{"pathfinder", 1024, 2, 8}, Row{"pathx", 16384, 2, 8}}) {
    const Problem p = problem_of("lra", {{"benchmark", r.name}});
    INFO(r.name);
    CHECK(p.q_len == r.len);
    CHECK(p.kv_len == r.len);
    CHECK(p.heads == r.heads);
    CHECK(p.head_dim == r.dim);
    CHECK(p.value_dim == r.dim);
    CHECK(p.mask->is_full());
    CHECK_FALSE(p.cross);
  }
  CHECK(problem_of("lra", {{"benchmark", "listops"}, {"scale", 0.25}}).q_len == 500);
  CHECK(problem_of("lra", {{"benchmark", "pathx"}, {"scale", 0.125}, {"heads", 3}}).q_len == 2048);
  CHECK(problem_of("lra", {{"benchmark", "pathx"}, {"heads", 3}}).heads == 3);
  CHECK(problem_of("lra", {{"benchmark", "image"}, {"scale", 1e-6}}).q_len == 1);
  CHECK_THAT(refusal("lra", {{"benchmark", "pathfinder"}, {"inputs", "structured"}, {"outliers", 9}}),
             Catch::Contains("outliers (9) exceeds head_dim (8)"));
}

TEST_CASE("decode: new tokens against the cache, GQA from the ratio, causal bottom-right", "[eff][tasks]") {
  const Problem p =
      problem_of("decode", {{"new_tokens", 4}, {"kv_len", 4096}, {"batch", 2}, {"heads", 32}, {"gqa_ratio", 8}});
  CHECK(p.q_len == 4);
  CHECK(p.kv_len == 4096);
  CHECK(p.batch == 2);
  CHECK(p.heads == 32);
  CHECK(p.kv_heads == 4);
  CHECK(p.head_dim == 128);
  CHECK(p.causal());
  CHECK_FALSE(p.cross);
  CHECK(p.mask->allowed(0, 0, 0, 4092));  // the first new token sits at position 4092
  CHECK_FALSE(p.mask->allowed(0, 0, 0, 4093));
  CHECK(p.mask->allowed(0, 0, 3, 4095));
  CHECK_THAT(refusal("decode", {{"heads", 32}, {"gqa_ratio", 3}}),
             Catch::Contains("gqa_ratio (3) must divide heads (32)"));
  CHECK_THAT(refusal("decode", {{"heads", 4}, {"gqa_ratio", 8}}), Catch::Contains("must divide"));
  CHECK_THAT(refusal("decode", {{"new_tokens", 9}, {"kv_len", 8}}), Catch::Contains("must not exceed kv_len"));
}

TEST_CASE("masks: every mask name gives the registered kind with the task's parameters", "[eff][tasks]") {
  struct Case {
    json given;
    std::string kind;
    json kind_params;
  };
  const std::vector<Case> cases{
      {{{"mask", "full"}}, "full", json::object()},
      {{{"mask", "causal"}}, "causal", json::object()},
      {{{"mask", "sliding_window"}, {"window", 5}}, "sliding_window", {{"window", 5}}},
      {{{"mask", "sliding_window"}, {"window", 6}, {"mode", "centred"}},
       "sliding_window",
       {{"window", 6}, {"mode", "centred"}}},
      {{{"mask", "sink_window"}, {"sinks", 2}, {"window", 4}}, "sink_window", {{"sinks", 2}, {"window", 4}}},
      {{{"mask", "document"}, {"doc_lens", "10,30,24"}}, "document", {{"doc_lens", "10,30,24"}}},
      {{{"mask", "document"}, {"documents", 3}, {"mask_seed", 4}, {"causal", false}},
       "document",
       {{"documents", 3}, {"seed", 4}, {"causal", false}}},
      {{{"mask", "shared_question"}, {"question", 16}, {"answers", 3}},
       "shared_question",
       {{"question", 16}, {"answers", 3}}},
      {{{"mask", "global_sliding"}, {"global", 2}, {"window", 8}},
       "longformer",
       {{"global", 2}, {"window", 8}, {"mode", "causal"}}},
      {{{"mask", "block_causal"}, {"block", 8}}, "block_causal", {{"block", 8}}},
      {{{"mask", "dilated"}, {"window", 4}, {"dilation", 3}}, "dilated", {{"window", 4}, {"dilation", 3}}},
      {{{"mask", "random_block"}, {"block", 8}, {"density", 0.5}, {"mask_seed", 2}, {"causal", false}},
       "random_block",
       {{"block", 8}, {"density", 0.5}, {"seed", 2}, {"causal", false}}}};
  for (const Case& c : cases) {
    json given = c.given;
    given["seq_len"] = 64;
    given["heads"] = 2;
    const Problem p = problem_of("masks", given);
    INFO(given.dump());
    CHECK(p.mask->name() == c.kind);
    const auto expected = make_mask(c.kind, c.kind_params, p.mask_shape());
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t q = 0; q < 64; ++q)
        for (std::int64_t k = 0; k < 64; ++k) REQUIRE(p.mask->allowed(0, h, q, k) == expected->allowed(0, h, q, k));
  }
}

TEST_CASE("masks: inconsistent mask parameters are refused with a sentence", "[eff][tasks]") {
  CHECK_THAT(refusal("masks", {{"mask", "document"}, {"seq_len", 64}, {"doc_lens", "10,20"}}),
             Catch::Contains("sums to 30, not seq_len (64)"));
  CHECK_THAT(refusal("masks", {{"mask", "document"}, {"seq_len", 64}, {"doc_lens", "10,,54"}}),
             Catch::Contains("positive integers"));
  CHECK_THAT(refusal("masks", {{"mask", "document"}, {"seq_len", 64}, {"documents", 65}}),
             Catch::Contains("documents (65) exceeds seq_len (64)"));
  CHECK_THAT(refusal("masks", {{"mask", "shared_question"}, {"seq_len", 64}, {"question", 62}, {"answers", 3}}),
             Catch::Contains("do not fit"));
  CHECK_THAT(refusal("masks", {{"mask", "global_sliding"}, {"seq_len", 64}, {"global", 64}}),
             Catch::Contains("global (64)"));
  CHECK_THAT(refusal("masks", {{"mask", "block_causal"}, {"seq_len", 64}, {"block", 64}}),
             Catch::Contains("single block"));
  CHECK(refusal("masks", {{"mask", "document"}, {"seq_len", 64}, {"doc_lens", "10,54"}}).empty());
}

TEST_CASE("efficiency tasks: input choices are checked", "[eff][tasks]") {
  for (const std::string task : {"cab", "lra", "masks", "decode"}) {
    INFO(task);
    CHECK_THAT(refusal(task, {{"inputs", "hdf5"}}), Catch::Contains("needs inputs_file"));
    CHECK_THAT(refusal(task, {{"inputs", "structured"}, {"inputs_file", "x.h5"}}),
               Catch::Contains("read only when inputs = hdf5"));
    CHECK(refusal(task, {{"inputs", "structured"}}).empty());
    CHECK(refusal(task, {{"inputs", "hdf5"}, {"inputs_file", "x.h5"}}).empty());
  }
}

TEST_CASE("efficiency tasks: instances are deterministic and scored against the oracle", "[eff][tasks]") {
  const std::vector<std::pair<std::string, json>> cases{
      {"cab", {{"pattern", "cross_causal"}, {"seq_len", 24}, {"kv_len", 40}, {"heads", 2}, {"head_dim", 16}}},
      {"lra", {{"benchmark", "pathfinder"}, {"scale", 0.03}}},
      {"masks", {{"mask", "document"}, {"seq_len", 48}, {"heads", 2}, {"head_dim", 16}, {"inputs", "structured"}}},
      {"decode",
       {{"new_tokens", 2},
        {"kv_len", 64},
        {"heads", 4},
        {"gqa_ratio", 2},
        {"head_dim", 16},
        {"inputs", "structured"}}}};
  for (const auto& [name, given] : cases) {
    INFO(name << " " << given.dump());
    const Task& t = task_named(name);
    const Params p = params_of(name, given);
    REQUIRE_FALSE(t.check(p));
    CHECK(t.kind() == TaskKind::efficiency);
    CHECK(t.needs_reference());
    const auto a = t.make(p, 5), b = t.make(p, 5), c = t.make(p, 6);
    REQUIRE(a->inputs.k.nbytes() == b->inputs.k.nbytes());
    CHECK(std::memcmp(a->inputs.k.data(), b->inputs.k.data(), a->inputs.k.nbytes()) == 0);
    CHECK(std::memcmp(a->inputs.k.data(), c->inputs.k.data(), a->inputs.k.nbytes()) != 0);
    CHECK(a->problem.describe() == t.problem(p).describe());

    const Tensor ref = testing::run_method("reference", a->problem, a->inputs);
    const Tensor flash = testing::run_method("flash", a->problem, a->inputs);
    Metrics exact = t.score(*a, ref, &ref);
    REQUIRE(exact.size() == 2);
    CHECK(exact[0].first == "rel_l2");
    CHECK(exact[0].second == 0.0);
    CHECK(exact[1].second == 0.0);
    const Metrics fast = t.score(*a, flash, &ref);
    CHECK(fast[0].second < 1e-5);
    Tensor off(ref.dtype(), ref.shape());
    std::memcpy(off.data(), ref.data(), ref.nbytes());
    off.set(3, off.get(3) + 0.5);
    const Metrics bad = t.score(*a, off, &ref);
    CHECK(bad[1].second == Approx(0.5));
    CHECK(bad[0].second > 0);
  }
}
