// Merging the shards of a suite: same manifest, same build, no cell twice; the cells nobody ran are named.
#include "attnbench/merge.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "attnbench/manifest.hpp"
#include "attnbench/params.hpp"

namespace attnbench {

namespace {

std::string part_text(const ResultsFile& f) {
  return f.path + " (" + (f.shard.empty() ? std::string("no shard") : "shard " + f.shard) + ")";
}

json environment_of(const ResultsFile& f) {
  json env = json::parse(f.environment, nullptr, false);
  if (env.is_discarded() || !env.is_object())
    throw MergeError(f.path + ": its environment attribute is not a JSON object, so its build cannot be checked");
  return env;
}

std::string value_or_absent(const json& env, const std::string& key) {
  return env.contains(key) ? env[key].dump() : std::string("(absent)");
}

// The shard count N of "I/N", or 0 for a file that is not a shard.
int shard_count(const std::string& shard) {
  const auto slash = shard.find('/');
  if (shard.empty() || slash == std::string::npos) return 0;
  try {
    return std::stoi(shard.substr(slash + 1));
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

const std::vector<std::string>& build_identity_keys() {
  static const std::vector<std::string> keys{"git_revision", "attnbench_version", "compiler", "compiler_version_string",
                                             "cxx_flags",    "build_type"};
  return keys;
}

MergeResult merge_results(const std::vector<ResultsFile>& parts) {
  if (parts.empty()) throw MergeError("nothing to merge: no result files given");
  const ResultsFile& first = parts.front();
  const json first_env = environment_of(first);

  for (std::size_t i = 1; i < parts.size(); ++i) {
    const ResultsFile& f = parts[i];
    if (f.manifest_text != first.manifest_text)
      throw MergeError(f.path + " and " + first.path + " come from different manifests (\"" + f.manifest_name +
                       "\" from " + (f.manifest_path.empty() ? "?" : f.manifest_path) + ", \"" + first.manifest_name +
                       "\" from " + (first.manifest_path.empty() ? "?" : first.manifest_path) +
                       "; the texts differ); merge joins the shards of one suite");
    const json env = environment_of(f);
    for (const std::string& key : build_identity_keys())
      if (value_or_absent(env, key) != value_or_absent(first_env, key))
        throw MergeError(f.path + " and " + first.path + " come from different builds: " + key + " is " +
                         value_or_absent(env, key) + " in the one and " + value_or_absent(first_env, key) +
                         " in the other; merge needs every shard run by the same build");
  }

  // The cells the manifest expands to, from the text stored in the file (the file on disk may have changed).
  std::vector<Cell> expected;
  try {
    expected = expand(parse_manifest(first.manifest_text, first.manifest_path));
  } catch (const ManifestError& e) {
    const std::string what = e.what();
    const bool unknown =
        what.find("unknown method") != std::string::npos || what.find("unknown task") != std::string::npos;
    throw MergeError("cannot expand the manifest stored in " + first.path + " to check its cells: " + what +
                     (unknown ? "; a method or task of a plugin is not loaded: pass the library with --plugin" : ""));
  }
  std::map<std::string, const Cell*> expected_by_id;
  for (const Cell& c : expected) expected_by_id.emplace(c.id, &c);

  MergeResult out;
  ResultsFile& m = out.merged;
  m.schema_version = first.schema_version;
  m.manifest_text = first.manifest_text;
  m.manifest_name = first.manifest_name;
  m.manifest_path = first.manifest_path;
  m.shard = "";
  m.expected_cells = static_cast<std::int64_t>(expected.size());

  json merged_env = first_env;
  json from = json::array();
  std::map<std::string, const ResultsFile*> owner;  // cell id -> the part that holds it
  for (const ResultsFile& f : parts) {
    for (const CellRecord& c : f.cells) {
      const auto e = expected_by_id.find(c.id);
      if (e == expected_by_id.end())
        throw MergeError(f.path + ": holds cell '" + c.id + "', which its manifest does not expand to");
      if (e->second->index != c.index)
        throw MergeError(f.path + ": cell '" + c.id + "' has index " + std::to_string(c.index) +
                         ", but the manifest expands it at index " + std::to_string(e->second->index));
      const auto [it, fresh] = owner.emplace(c.id, &f);
      if (!fresh)
        throw MergeError("cell '" + c.id + "' is in both " + part_text(*it->second) + " and " + part_text(f) +
                         (it->second == &f ? " (twice in one file)" : "") +
                         "; merge refuses overlapping parts (was a shard given twice, or shards of different N?)");
      m.cells.push_back(c);
    }
    from.push_back({{"file", f.path},
                    {"shard", f.shard},
                    {"cells", static_cast<std::int64_t>(f.cells.size())},
                    {"expected_cells", f.expected_cells},
                    {"environment", environment_of(f)}});
  }
  merged_env["merged_from"] = std::move(from);
  m.environment = merged_env.dump();
  std::stable_sort(m.cells.begin(), m.cells.end(),
                   [](const CellRecord& a, const CellRecord& b) { return a.index < b.index; });
  for (const Cell& c : expected)
    if (!owner.count(c.id)) out.missing.push_back(c.id);
  return out;
}

std::vector<ResultsFile> join_shards(const std::vector<ResultsFile>& files) {
  std::vector<ResultsFile> out;
  std::map<std::pair<std::string, int>, std::size_t> joined;  // (manifest text, N) -> its place in `out`
  for (const ResultsFile& f : files) {
    const int n = shard_count(f.shard);
    if (n > 1) {
      const auto [it, fresh] = joined.emplace(std::make_pair(f.manifest_text, n), out.size());
      if (!fresh) {
        ResultsFile& into = out[it->second];
        into.cells.insert(into.cells.end(), f.cells.begin(), f.cells.end());
        into.expected_cells += f.expected_cells;
        continue;
      }
    }
    out.push_back(f);
  }
  return out;
}

}  // namespace attnbench
