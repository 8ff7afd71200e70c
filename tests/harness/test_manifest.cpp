// Manifest validation (every error names file, JSON path and what was expected) and deterministic expansion.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "attnbench/manifest.hpp"

using namespace attnbench;

namespace {

const char* kGood = R"({"name": "t", "seed": 3, "baseline": "dense",
  "methods": [{"name": "dense"}, {"name": "flash", "axes": {"block_k": [64, 128]}},
              {"name": "flash", "label": "flash_small", "params": {"block_q": 16}}],
  "tasks": [{"name": "synthetic", "params": {"heads": 2},
             "axes": {"seq_len": [32, 64, 96], "causal": [false, true]}}]})";

// Parses `text` and returns the error; fails the test when it parses.
ManifestError error_of(const std::string& text) {
  try {
    parse_manifest(text, "suite.json");
  } catch (const ManifestError& e) {
    return e;
  }
  FAIL("manifest was accepted: " << text);
  throw std::logic_error("unreachable");
}

std::string with(const std::string& methods, const std::string& tasks = R"([{"name": "synthetic"}])") {
  return R"({"name": "t", "methods": )" + methods + R"(, "tasks": )" + tasks + "}";
}

}  // namespace

TEST_CASE("a valid manifest expands to the grid, tasks first, last axis fastest", "[manifest]") {
  const Manifest m = parse_manifest(kGood, "suite.json");
  CHECK(m.name == "t");
  CHECK(m.seed == 3);
  CHECK(m.baseline == "dense");
  CHECK(m.timing.warmup == 2);  // defaults
  CHECK(m.timing.max_noise == Approx(0.02));
  const auto cells = expand(m);
  REQUIRE(cells.size() == 6 * 4);  // 3 lengths x 2 masks, times dense + flash x2 + flash_small
  CHECK(cells[0].method_label == "dense");
  CHECK(cells[0].task_params.integer("seq_len") == 32);
  CHECK_FALSE(cells[0].task_params.boolean("causal"));
  CHECK(cells[4].task_params.boolean("causal"));  // causal is the last axis: it varies fastest
  CHECK(cells[1].method_params.integer("block_k") == 64);
  CHECK(cells[2].method_params.integer("block_k") == 128);
  CHECK(cells[3].method_label == "flash_small");
  CHECK(cells[3].method_params.integer("block_q") == 16);
  CHECK(cells[3].method_params.integer("block_k") == 128);  // default filled in
  // Cells of one task instance share the seed and instance index; instances differ.
  CHECK(cells[0].seed == cells[3].seed);
  CHECK(cells[0].instance == cells[3].instance);
  CHECK(cells[0].seed != cells[4].seed);
}

TEST_CASE("expansion is deterministic: same manifest, same ids, seeds and order", "[manifest]") {
  const auto a = expand(parse_manifest(kGood, "a.json"));
  const auto b = expand(parse_manifest(kGood, "b.json"));
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].id == b[i].id);
    CHECK(a[i].seed == b[i].seed);
    CHECK(a[i].index == static_cast<std::int64_t>(i));
  }
  std::set<std::string> ids;
  for (const auto& c : a) ids.insert(c.id);
  CHECK(ids.size() == a.size());
  // A different manifest seed changes the inputs' seeds but not the ids.
  std::string other = kGood;
  other.replace(other.find("\"seed\": 3"), 9, "\"seed\": 4");
  const auto c = expand(parse_manifest(other, "c.json"));
  CHECK(c[0].id == a[0].id);
  CHECK(c[0].seed != a[0].seed);
}

TEST_CASE("bad JSON names the file, line and column", "[manifest]") {
  const auto e = error_of("{\"name\": \"t\",\n  \"methods\": [,]}");
  CHECK(e.file() == "suite.json");
  CHECK(e.json_path() == "$");
  CHECK_THAT(e.expected(), Catch::Contains("line 2"));
  CHECK_THAT(std::string(e.what()), Catch::StartsWith("suite.json: $: "));
}

TEST_CASE("manifest errors name the JSON path and what was expected", "[manifest]") {
  SECTION("unknown method") {
    const auto e = error_of(with(R"([{"name": "dense"}, {"name": "flashy"}])"));
    CHECK(e.json_path() == "$.methods[1].name");
    CHECK_THAT(e.expected(), Catch::Contains("unknown method \"flashy\"") && Catch::Contains("flash"));
  }
  SECTION("unknown task") {
    const auto e = error_of(with(R"([{"name": "dense"}])", R"([{"name": "synth"}])"));
    CHECK(e.json_path() == "$.tasks[0].name");
  }
  SECTION("unknown parameter") {
    const auto e = error_of(with(R"([{"name": "flash", "params": {"blok_k": 64}}])"));
    CHECK(e.json_path() == "$.methods[0].params.blok_k");
    CHECK_THAT(e.expected(), Catch::Contains("no parameter \"blok_k\"") && Catch::Contains("block_k"));
  }
  SECTION("value out of range, inside an axis") {
    const auto e = error_of(with(R"([{"name": "flash", "axes": {"block_k": [64, 3]}}])"));
    CHECK(e.json_path() == "$.methods[0].axes.block_k[1]");
    CHECK_THAT(e.expected(), Catch::Contains("integer in [16, 1024]") && Catch::Contains("got 3"));
  }
  SECTION("wrong type") {
    const auto e = error_of(with(R"([{"name": "dense"}])", R"([{"name": "synthetic", "params": {"causal": "yes"}}])"));
    CHECK(e.json_path() == "$.tasks[0].params.causal");
    CHECK_THAT(e.expected(), Catch::Contains("true or false"));
  }
  SECTION("choice") {
    const auto e =
        error_of(with(R"([{"name": "dense"}])", R"([{"name": "synthetic", "axes": {"dtype": ["fp32", "int8"]}}])"));
    CHECK(e.json_path() == "$.tasks[0].axes.dtype[1]");
    CHECK_THAT(e.expected(), Catch::Contains("\"bf16\""));
  }
  SECTION("duplicate method label") {
    const auto e = error_of(with(R"([{"name": "flash"}, {"name": "flash"}])"));
    CHECK(e.json_path() == "$.methods[1]");
    CHECK_THAT(e.expected(), Catch::Contains("duplicate method label \"flash\"") && Catch::Contains("$.methods[0]"));
  }
  SECTION("duplicate key") {
    const auto e = error_of(with(R"([{"name": "flash", "params": {"block_k": 64, "block_k": 128}}])"));
    CHECK(e.json_path() == "$.methods[0].params.block_k");
    CHECK_THAT(e.expected(), Catch::Contains("twice"));
  }
  SECTION("duplicate task instance") {
    const auto e = error_of(with(R"([{"name": "dense"}])",
                                 R"([{"name": "synthetic"}, {"name": "synthetic", "params": {"seq_len": 1024}}])"));
    CHECK(e.json_path() == "$.tasks[1]");
  }
  SECTION("axis value repeated") {
    const auto e =
        error_of(with(R"([{"name": "dense"}])", R"([{"name": "synthetic", "axes": {"seq_len": [64, 64]}}])"));
    CHECK(e.json_path() == "$.tasks[0].axes.seq_len[1]");
  }
  SECTION("parameter in both params and axes") {
    const auto e = error_of(with(R"([{"name": "flash", "params": {"block_k": 64}, "axes": {"block_k": [64]}}])"));
    CHECK(e.json_path() == "$.methods[0].axes.block_k");
  }
  SECTION("empty axis") {
    const auto e = error_of(with(R"([{"name": "flash", "axes": {"block_k": []}}])"));
    CHECK(e.json_path() == "$.methods[0].axes.block_k");
  }
  SECTION("inconsistent shape across parameters") {
    const auto e =
        error_of(with(R"([{"name": "dense"}])", R"([{"name": "synthetic", "params": {"heads": 6, "kv_heads": 4}}])"));
    CHECK(e.json_path() == "$.tasks[0]");
    CHECK_THAT(e.expected(), Catch::Contains("kv_heads (4) must divide heads (6)"));
  }
  SECTION("baseline that is no method label") {
    const auto e = error_of(
        R"({"name": "t", "baseline": "cudnn", "methods": [{"name": "dense"}], "tasks": [{"name": "synthetic"}]})");
    CHECK(e.json_path() == "$.baseline");
  }
  SECTION("unknown top-level key") {
    const auto e =
        error_of(R"({"name": "t", "method": [], "methods": [{"name": "dense"}], "tasks": [{"name": "synthetic"}]})");
    CHECK(e.json_path() == "$.method");
  }
  SECTION("timing out of range") {
    const auto e = error_of(
        R"({"name": "t", "timing": {"max_noise": 0}, "methods": [{"name": "dense"}], "tasks": [{"name": "synthetic"}]})");
    CHECK(e.json_path() == "$.timing.max_noise");
  }
  SECTION("missing name and empty lists") {
    CHECK(error_of(R"({"methods": [{"name": "dense"}], "tasks": [{"name": "synthetic"}]})").expected() ==
          "expected a \"name\" key");
    CHECK(error_of(R"({"name": "t", "methods": [], "tasks": [{"name": "synthetic"}]})").json_path() == "$.methods");
  }
}

TEST_CASE("a missing manifest file is a ManifestError naming it", "[manifest]") {
  try {
    load_manifest("/nonexistent/suite.json");
    FAIL("loaded");
  } catch (const ManifestError& e) {
    CHECK(e.file() == "/nonexistent/suite.json");
  }
}

TEST_CASE("a suite of suites includes other manifests by path, checked when it loads", "[manifest]") {
  const auto dir = std::filesystem::temp_directory_path() / ("attnbench-include-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "a.json") << kGood;
  std::ofstream(dir / "b.json") << R"({"name": "b", "methods": [{"name": "flash"}], "tasks": [{"name": "synthetic"}]})";
  std::ofstream(dir / "bad.json")
      << R"({"name": "bad", "methods": [{"name": "nope"}], "tasks": [{"name": "synthetic"}]})";
  std::ofstream(dir / "nested.json") << R"({"name": "nested", "include": ["b.json"]})";
  auto load = [&](const std::string& text) {
    std::ofstream(dir / "top.json") << text;
    return load_manifest((dir / "top.json").string());
  };
  const Manifest m = load(R"({"name": "all", "include": ["a.json", "b.json"]})");
  REQUIRE(m.includes.size() == 2);
  CHECK(m.includes[1] == (dir / "b.json").string());
  CHECK(m.methods.empty());
  auto error_at = [&](const std::string& text) {
    try {
      load(text);
    } catch (const ManifestError& e) {
      return e.json_path() + ": " + e.expected();
    }
    return std::string("accepted");
  };
  CHECK_THAT(error_at(R"({"name": "all", "include": ["a.json", "missing.json"]})"),
             Catch::StartsWith("$.include[1]: a valid manifest"));
  CHECK_THAT(error_at(R"({"name": "all", "include": ["bad.json"]})"),
             Catch::StartsWith("$.include[0]") && Catch::Contains("$.methods[0].name"));
  CHECK_THAT(error_at(R"({"name": "all", "include": ["nested.json"]})"), Catch::Contains("includes others itself"));
  CHECK_THAT(error_at(R"({"name": "all", "include": ["b.json", "b.json"]})"), Catch::Contains("appears twice"));
  CHECK_THAT(error_at(R"({"name": "all", "include": ["b.json"], "methods": [{"name": "flash"}]})"),
             Catch::StartsWith("$.methods"));
  CHECK_THAT(error_at(R"({"name": "all", "include": []})"), Catch::StartsWith("$.include: expected a non-empty array"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("\"scale\" multiplies the named integer task parameters before validation", "[manifest]") {
  const Manifest m = parse_manifest(R"({"name": "s", "scale": {"seq_len": 4, "kv_len": 2},
    "methods": [{"name": "flash"}],
    "tasks": [{"name": "synthetic", "params": {"kv_len": 100}, "axes": {"seq_len": [10, 20]}}]})",
                                    "s.json");
  const auto cells = expand(m);
  REQUIRE(cells.size() == 2);
  CHECK(cells[0].task_params.integer("seq_len") == 40);
  CHECK(cells[1].task_params.integer("seq_len") == 80);
  CHECK(cells[0].task_params.integer("kv_len") == 200);
  CHECK(cells[0].task_params.integer("head_dim") == 64);  // not named, not scaled
  // Scaling past a parameter's range is refused where the value stands.
  try {
    parse_manifest(R"({"name": "s", "scale": {"seq_len": 1000000},
      "methods": [{"name": "flash"}], "tasks": [{"name": "synthetic", "axes": {"seq_len": [1024]}}]})",
                   "s.json");
    FAIL("accepted");
  } catch (const ManifestError& e) {
    CHECK(e.json_path() == "$.tasks[0].axes.seq_len[0]");
  }
  CHECK_THROWS_AS(parse_manifest(R"({"name": "s", "scale": {"seq_len": -1}, "methods": [{"name": "flash"}],
    "tasks": [{"name": "synthetic"}]})",
                                 "s.json"),
                  ManifestError);
}
