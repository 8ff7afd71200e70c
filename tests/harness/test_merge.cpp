// Merging the shards of a suite: merge_results and join_shards on files built here, then the CLI end to end
// (a suite run whole and as 3 shards, merged, compared cell by cell; overlaps, gaps, foreign parts refused).
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <tuple>

#include "attnbench/environment.hpp"
#include "attnbench/manifest.hpp"
#include "attnbench/merge.hpp"
#include "attnbench/report.hpp"
#include "attnbench/results.hpp"
#include "attnbench/shard.hpp"
#include "support/cli.hpp"

using namespace attnbench;
using test::run_cli;

namespace {

// 2 tasks x 4 method configurations x a few tiny shapes: 32 cells, fast, every fidelity metric deterministic.
const char* kSuite = R"({
  "name": "sharded",
  "seed": 11,
  "baseline": "dense",
  "timing": {"warmup": 0, "min_samples": 1, "max_samples": 2, "max_time_s": 0.01},
  "methods": [
    {"name": "dense"},
    {"name": "flash", "params": {"block_q": 16}, "axes": {"block_k": [16, 32]}},
    {"name": "memeff"}
  ],
  "tasks": [
    {"name": "synthetic", "params": {"batch": 1, "heads": 2, "head_dim": 16},
     "axes": {"seq_len": [16, 40, 96], "causal": [false, true]}},
    {"name": "decode", "params": {"batch": 1, "heads": 4, "gqa_ratio": 2, "head_dim": 32},
     "axes": {"kv_len": [64, 200]}}
  ]
})";
constexpr std::size_t kSuiteCells = (6 + 2) * 4;

// A part as `attnbench run --shard I/N` would write it, without running anything: the shard's cells with
// made-up measurements.
ResultsFile fake_part(const std::string& text, Shard s, const std::string& path, const std::string& environment) {
  const std::vector<Cell> cells = expand(parse_manifest(text, "suite.json"));
  std::vector<double> costs;
  for (const Cell& c : cells) costs.push_back(estimate_cost(c));
  ResultsFile f;
  f.path = path;
  f.manifest_text = text;
  f.manifest_name = "sharded";
  f.manifest_path = "suite.json";
  f.environment = environment;
  f.shard = s.whole() ? "" : s.to_string();
  for (std::size_t i : select_shard(cells, costs, s)) {
    CellRecord r;
    r.index = cells[i].index;
    r.id = cells[i].id;
    r.method = cells[i].method_label;
    r.method_name = cells[i].method_name;
    r.task = cells[i].task_name;
    r.status = "ok";
    r.metrics = {{"rel_l2", 1e-7 * static_cast<double>(i + 1)}};
    f.cells.push_back(r);
  }
  f.expected_cells = static_cast<std::int64_t>(f.cells.size());
  std::reverse(f.cells.begin(), f.cells.end());  // a part's order does not matter to the merge
  return f;
}

std::string env_with(const std::string& key, const json& value) {
  json e = collect_environment(11, 1);
  e[key] = value;
  return e.dump();
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const MergeError& e) {
    return e.what();
  }
  return "(no MergeError)";
}

}  // namespace

TEST_CASE("merge_results joins disjoint shards into the whole suite, sorted, with the parts recorded", "[merge]") {
  const std::string env = collect_environment(11, 1).dump();
  std::vector<ResultsFile> parts;
  for (int i : {3, 1, 2}) parts.push_back(fake_part(kSuite, Shard{i, 3}, "s" + std::to_string(i) + ".h5", env));
  const MergeResult m = merge_results(parts);
  CHECK(m.missing.empty());
  CHECK(m.merged.shard.empty());
  CHECK(m.merged.expected_cells == static_cast<std::int64_t>(kSuiteCells));
  REQUIRE(m.merged.cells.size() == kSuiteCells);
  const std::vector<Cell> cells = expand(parse_manifest(kSuite, ""));
  for (std::size_t i = 0; i < cells.size(); ++i) {
    CHECK(m.merged.cells[i].index == static_cast<std::int64_t>(i));
    CHECK(m.merged.cells[i].id == cells[i].id);
    CHECK(m.merged.cells[i].metrics.at(0).second == 1e-7 * static_cast<double>(i + 1));
  }
  CHECK(m.merged.manifest_text == kSuite);
  const json e = json::parse(m.merged.environment);
  CHECK(e["git_revision"] == json::parse(env)["git_revision"]);
  REQUIRE(e["merged_from"].size() == 3);
  CHECK(e["merged_from"][0]["file"] == "s3.h5");
  CHECK(e["merged_from"][0]["shard"] == "3/3");
  CHECK(e["merged_from"][1]["shard"] == "1/3");
  CHECK(e["merged_from"][0]["cells"] == parts[0].cells.size());
  CHECK(e["merged_from"][2]["environment"]["hostname"] == json::parse(env)["hostname"]);
}

TEST_CASE("merge_results names the missing cells in manifest order", "[merge]") {
  const std::string env = collect_environment(11, 1).dump();
  const ResultsFile one = fake_part(kSuite, Shard{1, 3}, "s1.h5", env);
  const ResultsFile three = fake_part(kSuite, Shard{3, 3}, "s3.h5", env);
  const ResultsFile two = fake_part(kSuite, Shard{2, 3}, "s2.h5", env);
  const MergeResult m = merge_results({one, three});
  CHECK(m.merged.cells.size() == one.cells.size() + three.cells.size());
  CHECK(m.merged.expected_cells == static_cast<std::int64_t>(kSuiteCells));
  std::vector<std::string> want;
  const std::vector<Cell> cells = expand(parse_manifest(kSuite, ""));
  std::set<std::string> in_two;
  for (const CellRecord& c : two.cells) in_two.insert(c.id);
  for (const Cell& c : cells)
    if (in_two.count(c.id)) want.push_back(c.id);
  CHECK(m.missing == want);
  REQUIRE_FALSE(want.empty());
}

TEST_CASE("merge_results refuses overlaps, foreign manifests and builds, and cells the manifest lacks", "[merge]") {
  const std::string env = collect_environment(11, 1).dump();
  const ResultsFile one = fake_part(kSuite, Shard{1, 3}, "s1.h5", env);
  const ResultsFile two = fake_part(kSuite, Shard{2, 3}, "s2.h5", env);

  CHECK_THAT(message_of([&] { merge_results({}); }), Catch::Contains("no result files"));

  // The same shard twice: the first cell of it, both files named.
  ResultsFile again = one;
  again.path = "copy.h5";
  std::string msg = message_of([&] { merge_results({one, two, again}); });
  CHECK_THAT(msg, Catch::Contains("cell '" + one.cells.front().id +
                                  "' is in both s1.h5 (shard 1/3) and copy.h5 "
                                  "(shard 1/3)"));
  // Shards of different N overlap too.
  const ResultsFile half = fake_part(kSuite, Shard{1, 2}, "h1.h5", env);
  CHECK_THAT(message_of([&] { merge_results({one, two, half}); }), Catch::Contains("merge refuses overlapping parts"));

  // Another manifest (here: another seed).
  std::string other_text = kSuite;
  other_text.replace(other_text.find("\"seed\": 11"), 10, "\"seed\": 12");
  const ResultsFile foreign = fake_part(other_text, Shard{3, 3}, "other.h5", env);
  CHECK_THAT(message_of([&] {
               merge_results({one, two, foreign});
             }),
             Catch::Contains("other.h5 and s1.h5 come from different manifests"));

  // Another build: each key of the build identity in turn.
  for (const std::string& key : build_identity_keys()) {
    INFO(key);
    const ResultsFile rebuilt = fake_part(kSuite, Shard{3, 3}, "rebuilt.h5", env_with(key, "something else"));
    CHECK_THAT(message_of([&] {
                 merge_results({one, two, rebuilt});
               }),
               Catch::Contains("rebuilt.h5 and s1.h5 come from different builds: " + key + " is \"something else\""));
  }
  // Another machine is fine: hostname, CPU, load and time may differ.
  json machine = collect_environment(11, 1);
  machine["hostname"] = "node042";
  machine["cpu_model"] = "Some Other CPU";
  machine["loadavg_1_5_15"] = json::array({7.0, 6.0, 5.0});
  machine["time_utc"] = "2031-01-01T00:00:00Z";
  const ResultsFile elsewhere = fake_part(kSuite, Shard{3, 3}, "elsewhere.h5", machine.dump());
  const MergeResult ok = merge_results({one, two, elsewhere});
  CHECK(ok.missing.empty());
  CHECK(json::parse(ok.merged.environment)["hostname"] == json::parse(env)["hostname"]);  // the first part's
  CHECK(json::parse(ok.merged.environment)["merged_from"][2]["environment"]["hostname"] == "node042");

  // An environment that is not JSON cannot be checked.
  ResultsFile garbled = two;
  garbled.environment = "not json";
  CHECK_THAT(message_of([&] {
               merge_results({one, garbled});
             }),
             Catch::Contains("s2.h5: its environment attribute is not a JSON object"));

  // A cell the manifest does not expand to, and one at the wrong index.
  ResultsFile stray = two;
  stray.cells.front().id = "dense{}|synthetic{\"seq_len\":12345}";
  CHECK_THAT(message_of([&] {
               merge_results({one, stray});
             }),
             Catch::Contains("s2.h5: holds cell 'dense{}|synthetic{\"seq_len\":12345}', which its manifest does not "
                             "expand to"));
  ResultsFile moved = two;
  moved.cells.front().index += 1000;
  CHECK_THAT(message_of([&] { merge_results({one, moved}); }), Catch::Contains("but the manifest expands it at index"));
}

TEST_CASE("merge_results says when the stored manifest names a method no plugin registered", "[merge]") {
  const std::string text = R"({"name": "plug", "methods": [{"name": "no_such_method"}],
                               "tasks": [{"name": "synthetic"}]})";
  ResultsFile f;
  f.path = "plug.1.h5";
  f.manifest_text = text;
  f.environment = collect_environment(1, 1).dump();
  f.shard = "1/2";
  const std::string msg = message_of([&] { merge_results({f}); });
  CHECK_THAT(msg, Catch::Contains("cannot expand the manifest stored in plug.1.h5"));
  CHECK_THAT(msg, Catch::Contains("unknown method \"no_such_method\""));
  CHECK_THAT(msg, Catch::Contains("pass the library with --plugin"));
}

TEST_CASE("join_shards reads the shards of one suite as one file and leaves other files alone", "[merge]") {
  const std::string env = collect_environment(11, 1).dump();
  std::string other_text = kSuite;
  other_text.replace(other_text.find("\"seed\": 11"), 10, "\"seed\": 12");
  const ResultsFile whole = fake_part(kSuite, Shard{1, 1}, "whole.h5", env);
  const std::vector<ResultsFile> joined =
      join_shards({fake_part(kSuite, Shard{2, 3}, "s2.h5", env), whole, fake_part(kSuite, Shard{1, 3}, "s1.h5", env),
                   fake_part(other_text, Shard{1, 3}, "o1.h5", env), fake_part(kSuite, Shard{3, 3}, "s3.h5", env),
                   fake_part(kSuite, Shard{2, 2}, "h2.h5", env)});
  REQUIRE(joined.size() == 4);
  CHECK(joined[0].path == "s2.h5");
  CHECK(joined[0].cells.size() == kSuiteCells);
  CHECK(joined[0].expected_cells == static_cast<std::int64_t>(kSuiteCells));
  CHECK(joined[1].path == "whole.h5");
  CHECK(joined[1].cells.size() == kSuiteCells);
  CHECK(joined[2].path == "o1.h5");
  CHECK(joined[3].path == "h2.h5");  // shards of another N are not this split's
}

// ---- the CLI end to end --------------------------------------------------------------------------------

namespace {

struct Suite {
  std::filesystem::path dir;
  std::string manifest, whole;
  std::vector<std::string> shards;  // shard 1..3
};

// Appends only: GCC 12 warns falsely (-Wrestrict, bug 105651) on "literal" + std::string when inlined.
std::string q(const std::filesystem::path& p) {
  std::string quoted = "'";
  quoted += p.string();
  quoted += "'";
  return quoted;
}

// Writes the suite's manifest and runs it as 3 shards (and whole when asked), one thread each.
Suite run_suite(const std::string& name, bool whole) {
  Suite s;
  s.dir = test::scratch_dir(name);
  s.manifest = (s.dir / "suite.json").string();
  std::ofstream(s.manifest) << kSuite;
  if (whole) {
    s.whole = (s.dir / "whole.h5").string();
    const auto r = run_cli("run " + q(s.manifest) + " -o " + q(s.whole) + " --threads 1 --quiet", s.dir);
    INFO(r.err);
    REQUIRE(r.code == 0);
  }
  for (int i = 1; i <= 3; ++i) {
    s.shards.push_back((s.dir / ("suite." + std::to_string(i) + ".h5")).string());
    const auto r = run_cli("run " + q(s.manifest) + " --shard " + std::to_string(i) + "/3 -o " + q(s.shards.back()) +
                               " --threads 1 --quiet",
                           s.dir);
    INFO(r.err);
    REQUIRE(r.code == 0);
  }
  return s;
}

// The same cell, run twice: everything but the timings (and when it ran) equal, fidelity exactly.
void check_same_cell(const CellRecord& a, const CellRecord& b) {
  INFO(a.id);
  CHECK(a.index == b.index);
  CHECK(a.id == b.id);
  CHECK(a.method == b.method);
  CHECK(a.method_params == b.method_params);
  CHECK(a.task_params == b.task_params);
  CHECK(a.seed == b.seed);
  CHECK(a.status == b.status);
  CHECK(a.reason == b.reason);
  CHECK(a.device == b.device);
  CHECK(a.threads == b.threads);
  CHECK(std::tie(a.batch, a.heads, a.kv_heads, a.q_len, a.kv_len, a.head_dim, a.value_dim) ==
        std::tie(b.batch, b.heads, b.kv_heads, b.q_len, b.kv_len, b.head_dim, b.value_dim));
  CHECK(a.dtype == b.dtype);
  CHECK(a.mask == b.mask);
  CHECK(a.causal == b.causal);
  CHECK(a.flops == b.flops);
  CHECK(a.bytes == b.bytes);
  std::map<std::string, double> ma(a.metrics.begin(), a.metrics.end()), mb(b.metrics.begin(), b.metrics.end());
  for (const char* fidelity : {"rel_l2", "max_abs"}) {
    INFO(fidelity);
    REQUIRE(ma.count(fidelity));
    REQUIRE(mb.count(fidelity));
    CHECK(ma.at(fidelity) == mb.at(fidelity));
  }
  std::set<std::string> na, nb;
  for (const auto& [k, _] : ma) na.insert(k);
  for (const auto& [k, _] : mb) nb.insert(k);
  CHECK(na == nb);
}

}  // namespace

TEST_CASE("merge --help describes the command and its exit codes", "[merge][cli]") {
  const auto dir = test::scratch_dir("merge-help");
  const auto r = run_cli("merge --help", dir);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("usage: attnbench merge A.h5 B.h5 ... -o ALL.h5"));
  CHECK_THAT(r.out, Catch::Contains("--overwrite"));
  CHECK_THAT(r.out, Catch::Contains("1 merged, but"));
  CHECK_THAT(run_cli("--help", dir).out, Catch::Contains("merge A.h5 B.h5... -o ALL.h5"));
  CHECK(run_cli("merge", dir).code == 2);  // no files, no -o
  std::filesystem::remove_all(dir);
}

TEST_CASE("a suite run as 3 shards and merged equals the suite run whole, cell by cell, and report agrees",
          "[merge][cli]") {
  const Suite s = run_suite("merge-e2e", true);
  const ResultsFile whole = read_results(s.whole);
  REQUIRE(whole.cells.size() == kSuiteCells);

  std::size_t sum = 0;
  std::set<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    const ResultsFile part = read_results(s.shards[i]);
    CHECK(part.shard == std::to_string(i + 1) + "/3");
    CHECK(part.expected_cells == static_cast<std::int64_t>(part.cells.size()));
    CHECK_FALSE(part.cells.empty());
    CHECK(part.cells.size() < kSuiteCells);
    for (const CellRecord& c : part.cells) CHECK(seen.insert(c.id).second);
    sum += part.cells.size();
  }
  CHECK(sum == kSuiteCells);

  const std::string merged = (s.dir / "merged.h5").string();
  auto r = run_cli("merge " + q(s.shards[2]) + " " + q(s.shards[0]) + " " + q(s.shards[1]) + " -o " + q(merged), s.dir);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("merged 3 file(s) into " + merged + ": 32 of 32 cells"));
  CHECK(r.err.empty());
  const ResultsFile m = read_results(merged);
  CHECK(m.shard.empty());
  CHECK(m.expected_cells == static_cast<std::int64_t>(kSuiteCells));
  CHECK(m.manifest_text == whole.manifest_text);
  REQUIRE(m.cells.size() == whole.cells.size());
  std::size_t ok = 0;
  for (std::size_t i = 0; i < m.cells.size(); ++i) {
    check_same_cell(m.cells[i], whole.cells[i]);
    ok += m.cells[i].status == "ok";
    const double tol = m.cells[i].dtype == "fp32" ? 1e-5 : 1e-2;
    for (const auto& [name, value] : m.cells[i].metrics)
      if (name == "rel_l2") CHECK(value <= tol);
  }
  CHECK(ok == kSuiteCells);
  const json env = json::parse(m.environment);
  REQUIRE(env["merged_from"].size() == 3);
  CHECK(env["merged_from"][0]["shard"] == "3/3");
  CHECK(env["merged_from"][0]["file"] == s.shards[2]);

  // Report on the parts = report on the merged file, in every format and pivot (the parts are read as their
  // merge); and the fidelity pivot of the merged file equals the unsharded run's.
  const std::string parts = q(s.shards[0]) + " " + q(s.shards[1]) + " " + q(s.shards[2]);
  for (const std::string opts :
       {"", "--format csv", "--format latex", "--metric rel_l2", "--metric latency_ms", "--metric speedup"}) {
    INFO(opts);
    const auto from_parts = run_cli("report " + parts + " " + opts, s.dir);
    const auto from_merged = run_cli("report " + q(merged) + " " + opts, s.dir);
    REQUIRE(from_parts.code == 0);
    REQUIRE(from_merged.code == 0);
    CHECK(from_parts.out == from_merged.out);
    CHECK(from_parts.out.size() > 200);
  }
  CHECK_THAT(run_cli("report " + parts, s.dir).out, Catch::Contains("32 cells from 1 file(s)"));
  const auto fid_whole = run_cli("report " + q(s.whole) + " --metric rel_l2", s.dir);
  const auto fid_merged = run_cli("report " + q(merged) + " --metric rel_l2", s.dir);
  CHECK(fid_whole.out == fid_merged.out);
  // Read file by file, as copies without their shard attribute are, the parts would not give those tables
  // (rows in part order, a baseline in another part missing).
  std::string copies;
  for (int i = 0; i < 3; ++i) {
    ResultsFile part = read_results(s.shards[i]);
    part.shard = "";
    const auto copy = s.dir / ("copy." + std::to_string(i + 1) + ".h5");
    write_results(copy.string(), part);
    copies += " " + q(copy);
  }
  CHECK(run_cli("report" + copies, s.dir).out != run_cli("report " + q(merged), s.dir).out);
  CHECK_THAT(run_cli("report" + copies, s.dir).out, Catch::Contains("32 cells from 3 file(s)"));
  // The report on the parts, in shard order or not, is that of the merge; and so are the figures.
  CHECK(run_cli("report " + parts + " --figures " + q(s.dir / "fig-parts"), s.dir).code == 0);
  CHECK(run_cli("report " + q(merged) + " --figures " + q(s.dir / "fig-merged"), s.dir).code == 0);
  std::size_t figures = 0;
  for (const auto& e : std::filesystem::directory_iterator(s.dir / "fig-merged")) {
    INFO(e.path().filename());
    CHECK(test::slurp(e.path()) == test::slurp(s.dir / "fig-parts" / e.path().filename()));
    ++figures;
  }
  CHECK(figures > 0);
  CHECK(run_cli("report " + q(s.shards[1]) + " " + q(s.shards[2]) + " " + q(s.shards[0]), s.dir).out ==
        run_cli("report " + parts, s.dir).out);

  std::filesystem::remove_all(s.dir);
}

TEST_CASE("merge refuses overlaps and foreign parts, reports missing cells, and a partial merge resumes",
          "[merge][cli]") {
  const Suite s = run_suite("merge-refuse", false);
  const std::string all = q(s.shards[0]) + " " + q(s.shards[1]) + " " + q(s.shards[2]);
  const auto out = s.dir / "all.h5";

  // A shard twice: exit 2, the cell and both files named, nothing written.
  auto r = run_cli("merge " + all + " " + q(s.shards[1]) + " -o " + q(out), s.dir);
  CHECK(r.code == 2);
  const ResultsFile second = read_results(s.shards[1]);
  CHECK_THAT(r.err, Catch::Contains("cell '" + second.cells.front().id + "' is in both " + s.shards[1] +
                                    " (shard 2/3) and " + s.shards[1] + " (shard 2/3)"));
  CHECK_FALSE(std::filesystem::exists(out));

  // Two of three: exit 1, the file written all the same, the missing count then each id on stderr.
  r = run_cli("merge " + q(s.shards[0]) + " " + q(s.shards[2]) + " -o " + q(out), s.dir);
  CHECK(r.code == 1);
  REQUIRE(std::filesystem::exists(out));
  CHECK_THAT(r.err, Catch::StartsWith(std::to_string(second.cells.size()) + " cell(s) missing"));
  for (const CellRecord& c : second.cells) CHECK_THAT(r.err, Catch::Contains("\n  " + c.id + "\n"));
  const ResultsFile partial = read_results(out.string());
  CHECK(partial.expected_cells == static_cast<std::int64_t>(kSuiteCells));
  CHECK(partial.cells.size() == kSuiteCells - second.cells.size());
  CHECK(partial.shard.empty());

  // The output exists: refused without --overwrite; replaced with it.
  r = run_cli("merge " + all + " -o " + q(out), s.dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains(out.string() + " exists; pass --overwrite"));
  CHECK(read_results(out.string()).cells.size() == partial.cells.size());

  // The partial merge is the whole suite with gaps: run --resume fills them, and it equals the full merge.
  r = run_cli("run " + q(s.manifest) + " -o " + q(out) + " --resume --threads 1 --quiet", s.dir);
  INFO(r.err);
  REQUIRE(r.code == 0);
  ResultsFile resumed = read_results(out.string());
  // Resumed cells are appended after the kept ones; the order of /cells carries no meaning (report sorts).
  std::stable_sort(resumed.cells.begin(), resumed.cells.end(),
                   [](const CellRecord& a, const CellRecord& b) { return a.index < b.index; });
  const auto full = s.dir / "full.h5";
  REQUIRE(run_cli("merge " + all + " -o " + q(full), s.dir).code == 0);
  const ResultsFile merged = read_results(full.string());
  REQUIRE(resumed.cells.size() == kSuiteCells);
  for (std::size_t i = 0; i < merged.cells.size(); ++i) check_same_cell(resumed.cells[i], merged.cells[i]);
  r = run_cli("merge " + all + " -o " + q(full) + " --overwrite", s.dir);
  CHECK(r.code == 0);

  // A part of another manifest: exit 2, both files named.
  const auto other = s.dir / "other.json";
  std::string other_text = kSuite;
  other_text.replace(other_text.find("\"seed\": 11"), 10, "\"seed\": 12");
  std::ofstream(other) << other_text;
  const auto other3 = s.dir / "other.3.h5";
  REQUIRE(run_cli("run " + q(other) + " --shard 3/3 -o " + q(other3) + " --threads 1 --quiet", s.dir).code == 0);
  r = run_cli("merge " + q(s.shards[0]) + " " + q(s.shards[1]) + " " + q(other3) + " -o " + q(s.dir / "x.h5"), s.dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains(other3.string() + " and " + s.shards[0] + " come from different manifests"));
  CHECK_FALSE(std::filesystem::exists(s.dir / "x.h5"));

  // A part of another build (its environment rewritten): exit 2; another machine alone is fine.
  ResultsFile third = read_results(s.shards[2]);
  json env = json::parse(third.environment);
  env["hostname"] = "node042";
  env["loadavg_1_5_15"] = json::array({9.0, 9.0, 9.0});
  third.environment = env.dump();
  const auto elsewhere = s.dir / "elsewhere.3.h5";
  write_results(elsewhere.string(), third);
  r = run_cli("merge " + q(s.shards[0]) + " " + q(s.shards[1]) + " " + q(elsewhere) + " -o " + q(s.dir / "y.h5"),
              s.dir);
  CHECK(r.code == 0);
  env["git_revision"] = "0123456789abcdef0123456789abcdef01234567";
  third.environment = env.dump();
  const auto rebuilt = s.dir / "rebuilt.3.h5";
  write_results(rebuilt.string(), third);
  r = run_cli("merge " + q(s.shards[0]) + " " + q(s.shards[1]) + " " + q(rebuilt) + " -o " + q(s.dir / "z.h5"), s.dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains(rebuilt.string() + " and " + s.shards[0] + " come from different builds: " +
                                    "git_revision is \"0123456789abcdef0123456789abcdef01234567\""));

  // Not a result file at all: exit 2.
  std::ofstream(s.dir / "notes.h5") << "not HDF5";
  r = run_cli("merge " + q(s.shards[0]) + " " + q(s.dir / "notes.h5") + " -o " + q(s.dir / "w.h5"), s.dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("is not an HDF5 file"));

  // --resume of a shard with another --shard, or none, is refused; with its own it keeps every cell.
  r = run_cli("run " + q(s.manifest) + " --shard 2/3 -o " + q(s.shards[0]) + " --resume --threads 1 --quiet", s.dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("holds shard 1/3, not shard 2/3; --resume needs the same --shard"));
  r = run_cli("run " + q(s.manifest) + " -o " + q(s.shards[0]) + " --resume --threads 1 --quiet", s.dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("holds shard 1/3, not the whole suite"));
  r = run_cli("run " + q(s.manifest) + " --shard 1/3 -o " + q(s.shards[0]) + " --resume --threads 1", s.dir);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("(0 run now, " + std::to_string(read_results(s.shards[0]).cells.size()) +
                                    " kept from before)"));

  // A shard that does not exist.
  r = run_cli("run " + q(s.manifest) + " --shard 4/3 -o " + q(s.dir / "four.h5"), s.dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--shard: bad shard '4/3' (expected I/N with 1 <= I <= N"));
  CHECK_FALSE(std::filesystem::exists(s.dir / "four.h5"));

  std::filesystem::remove_all(s.dir);
}
