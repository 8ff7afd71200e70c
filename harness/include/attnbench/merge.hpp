// Joining the result files of a sharded suite (attnbench run --shard I/N) into one (docs/cluster.md).
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

#include "attnbench/results.hpp"

namespace attnbench {

// The parts cannot be joined: different manifests or builds, a cell in two parts, a stored manifest that
// no longer expands (a plugin's method or task not loaded), or a cell the manifest does not expand to.
class MergeError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The environment keys that identify a build; parts must agree on them. Machine keys (hostname, CPU,
// load, time) may differ.
const std::vector<std::string>& build_identity_keys();

struct MergeResult {
  ResultsFile merged;
  std::vector<std::string> missing;  // ids of the manifest's cells that no part holds, in manifest order
};

// Joins the parts (each read with read_results; `path` names them in messages). The merged file has the
// first part's manifest and environment, the latter with "merged_from": [{file, shard, cells,
// environment}] for every part; its cells are sorted by index, its shard is "" and expected_cells is the
// whole manifest's count, so that `attnbench run --resume` on it runs the missing cells. Throws
// MergeError; an empty `parts` is one too.
MergeResult merge_results(const std::vector<ResultsFile>& parts);

// For report: the shards of one suite (same manifest text, shard attributes I/N with the same N) read as
// one file, in place of the first of them, with their cells together, so that tables over the parts are
// the tables of their merge. Other files pass through unchanged, in order.
std::vector<ResultsFile> join_shards(const std::vector<ResultsFile>& files);

}  // namespace attnbench
