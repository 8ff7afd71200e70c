// Runs a manifest's cells: inputs per task instance, the oracle once per instance, each method timed.
#pragma once
#include <functional>
#include <iosfwd>
#include <string>

#include "attnbench/device.hpp"
#include "attnbench/manifest.hpp"
#include "attnbench/results.hpp"
#include "attnbench/shard.hpp"

namespace attnbench {

struct RunOptions {
  std::string output;  // result file
  bool resume = false;
  Device device;
  std::string device_note;           // what --device auto decided, recorded in the environment
  int threads = 0;                   // 0: OpenMP's default
  std::ostream* progress = nullptr;  // per-cell progress lines (stderr in the CLI)
  bool progress_tty = false;         // rewrite one line in place instead of a line per cell
  Shard shard;                       // run only this slice of the cells (--shard I/N)
  // What the watchdog does after it has recorded a hung cell (timing.hang_s): the CLI re-executes itself
  // with --resume, which goes on past the recorded cell. Must not return on success. Without it, or
  // under mpirun, the process ends with kHungExit and the same command with --resume goes on.
  std::function<void()> restart;
};

// The exit code of a run that stopped at a hung cell and could not restart itself.
inline constexpr int kHungExit = 3;

struct RunSummary {
  std::int64_t total = 0, ran = 0, skipped_done = 0, ok = 0, failed = 0, unsupported = 0;
};

// Throws ResultsError when --resume meets a file from another manifest (or another shard of it).
//
// Under mpirun every rank calls this with the same arguments. Rank 0 runs the single-process cells
// (the others wait without spinning), all ranks a distributed method needs run its cells together on
// a communicator of the first N ranks, and rank 0 alone scores, writes the file and prints progress.
RunSummary run_manifest(const Manifest& m, const RunOptions& opts);

}  // namespace attnbench
