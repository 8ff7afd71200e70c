// The attnbench command line: a thin layer of Boost.Program_options over the harness library.
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "attnbench/catalog.hpp"
#include "attnbench/device.hpp"
#include "attnbench/environment.hpp"
#include "attnbench/manifest.hpp"
#include "attnbench/mask.hpp"
#include "attnbench/merge.hpp"
#include "attnbench/method.hpp"
#include "attnbench/mpi_runtime.hpp"
#include "attnbench/plugin.hpp"
#include "attnbench/report.hpp"
#include "attnbench/runner.hpp"
#include "attnbench/task.hpp"

namespace po = boost::program_options;
using namespace attnbench;

namespace {

constexpr int kOk = 0, kFailure = 1, kBadInput = 2;

// This process's command line, for the watchdog's restart past a hung cell.
std::vector<std::string> g_argv;

// Re-executes this binary with the same arguments plus --resume: the result file already holds the hung
// cell's record, so the new process goes on with the next cell. Returns only when exec failed.
void restart_with_resume() {
  std::vector<std::string> args = g_argv;
  if (std::find(args.begin(), args.end(), "--resume") == args.end()) args.push_back("--resume");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const char* before = std::getenv("ATTNBENCH_RESTARTS");
  ::setenv("ATTNBENCH_RESTARTS", std::to_string((before ? std::atoi(before) : 0) + 1).c_str(), 1);
  std::cout.flush();
  std::cerr.flush();
  ::execv("/proc/self/exe", argv.data());
  std::cerr << "attnbench run: cannot restart (/proc/self/exe): " << std::strerror(errno) << "\n";
}

// Bad input from the user: printed as is, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* kUsage =
    "usage: attnbench <command> [options]\n"
    "\n"
    "commands:\n"
    "  run MANIFEST       run every cell of a suite and write one HDF5 result file\n"
    "  validate MANIFEST  check a manifest; print its cell count and unsupported method x task pairs\n"
    "  list WHAT          list registered methods, tasks or masks\n"
    "  merge A.h5 B.h5... -o ALL.h5\n"
    "                     join the result files of a sharded suite (run --shard I/N) into one\n"
    "  report FILE.h5...  tables from result files (Markdown, LaTeX, CSV); --figures DIR writes SVG figures\n"
    "  compare A.h5 B.h5  the cells of B against the same cells of A: medians, B/A - 1, U-test p-value\n"
    "  env                what a run records about this machine and build\n"
    "\n"
    "`attnbench <command> --help` describes each. Exit codes: 0 success, 1 failure, 2 bad input.\n";

// Parses one subcommand's options; returns false after printing help.
bool parse(const std::string& cmd, const std::string& synopsis, po::options_description& opts,
           const po::positional_options_description& pos, const std::vector<std::string>& args, po::variables_map& vm) {
  opts.add_options()("help,h", "show this help");
  try {
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: attnbench " << cmd << " " << synopsis << "\n\n" << opts << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError("attnbench " + cmd + ": " + e.what() + " (see attnbench " + cmd + " --help)");
  }
  return true;
}

void load_plugins(const po::variables_map& vm) {
  if (!vm.count("plugin")) return;
  for (const auto& path : vm["plugin"].as<std::vector<std::string>>()) load_plugin(path);
}

std::string default_output(const Manifest& m) {
  if (!m.output.empty()) return m.output;
  return "runs/" + m.name + ".h5";
}

int cmd_run(const std::vector<std::string>& args) {
  po::options_description opts("run options");
  opts.add_options()("manifest", po::value<std::string>()->required(), "suite manifest (JSON)")(
      "output,o", po::value<std::string>(),
      "result file (default: the manifest's \"output\", else runs/<name>.h5); for a manifest with \"include\", the "
      "folder of one file per suite (default runs/<name>/)")(
      "resume", po::bool_switch(), "continue an interrupted run: finished cells are kept, not redone")(
      "overwrite", po::bool_switch(), "replace an existing result file")(
      "device", po::value<std::string>(), "cpu, cuda, cuda:N or auto (default: the manifest's, else cpu)")(
      "threads", po::value<int>()->default_value(0), "OpenMP threads (0: OpenMP's default)")(
      "plugin", po::value<std::vector<std::string>>()->composing(),
      "shared library of extra methods/tasks (repeatable)")(
      "shard", po::value<std::string>(),
      "run only shard I of N (I/N, 1-based): disjoint, deterministic slices balanced by estimated cost; "
      "join the files with `attnbench merge`")(
      "quiet,q", po::bool_switch(), "no progress on stderr and no table on stdout")("strict", po::bool_switch(),
                                                                                    "exit 1 when any cell failed");
  po::positional_options_description pos;
  pos.add("manifest", 1);
  po::variables_map vm;
  if (!parse("run", "MANIFEST [-o FILE.h5] [--resume] [--device cpu|cuda|auto] [--threads N] [--shard I/N]", opts, pos,
             args, vm))
    return kOk;
  load_plugins(vm);
  const Manifest m = load_manifest(vm["manifest"].as<std::string>());
  // A suite of suites runs each included suite into its own file in one folder (-o names the folder).
  std::vector<std::pair<Manifest, std::string>> runs;
  if (m.includes.empty()) {
    runs.emplace_back(m, vm.count("output") ? vm["output"].as<std::string>() : default_output(m));
  } else {
    const std::filesystem::path dir =
        vm.count("output") ? vm["output"].as<std::string>() : (m.output.empty() ? "runs/" + m.name : m.output);
    for (const auto& sub : m.includes) {
      Manifest one = load_manifest(sub);
      const std::string out = (dir / (one.name + ".h5")).string();
      runs.emplace_back(std::move(one), out);
    }
  }
  RunOptions ro;
  ro.resume = vm["resume"].as<bool>();
  ro.threads = vm["threads"].as<int>();
  if (ro.threads < 0) throw UsageError("attnbench run: --threads must be >= 0");
  if (vm.count("shard")) {
    try {
      ro.shard = parse_shard(vm["shard"].as<std::string>());
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("attnbench run: --shard: ") + e.what());
    }
  }
  const bool root = mpi::world_rank() == 0;
  for (const auto& [_, out] : runs)
    if (root && !ro.resume && !vm["overwrite"].as<bool>() && std::filesystem::exists(out))
      throw UsageError("attnbench run: " + out + " exists; pass --resume to finish it or --overwrite to replace it");
  const std::string dev = vm.count("device") ? vm["device"].as<std::string>() : m.device;
  try {
    ro.device = resolve_device(dev, &ro.device_note);
  } catch (const std::exception& e) {
    throw UsageError(std::string("attnbench run: ") + e.what());
  }
  const bool quiet = vm["quiet"].as<bool>() || !root;  // under mpirun rank 0 alone reports
  if (!ro.device_note.empty() && !quiet) std::cerr << ro.device_note << "\n";
  ro.progress = quiet ? nullptr : &std::cerr;
  ro.progress_tty = isatty(STDERR_FILENO);
  ro.restart = restart_with_resume;
  RunSummary all;
  std::vector<ResultsFile> files;
  for (const auto& [suite, out] : runs) {
    ro.output = out;
    if (runs.size() > 1 && !quiet) std::cerr << "suite " << suite.name << " -> " << out << "\n";
    const RunSummary s = run_manifest(suite, ro);
    all.total += s.total;
    all.ran += s.ran;
    all.skipped_done += s.skipped_done;
    if (!root) continue;
    // The outcome counts come from the file, so that cells kept from before (--resume, or a restart past
    // a hung cell) count as well.
    files.push_back(read_results(out));
    for (const CellRecord& c : files.back().cells)
      ++(c.status == "ok" ? all.ok : c.status == "failed" ? all.failed : all.unsupported);
  }
  if (!quiet) {
    std::cout << render_report(files, ReportOptions{});
    std::cout << "\n"
              << all.total << " cells: " << all.ok << " ok, " << all.failed << " failed, " << all.unsupported
              << " unsupported (" << all.ran << " run now, " << all.skipped_done << " kept from before";
    if (const char* n = std::getenv("ATTNBENCH_RESTARTS"))  // set by restart_with_resume()
      std::cout << "; restarted " << n << " time(s) past a hung cell";
    std::cout << ")\n";
    std::cout << "results:";
    for (const auto& [_, out] : runs) std::cout << " " << out;
    std::cout << "\n";
  }
  return vm["strict"].as<bool>() && all.failed > 0 ? kFailure : kOk;
}

int cmd_validate(const std::vector<std::string>& args) {
  po::options_description opts("validate options");
  opts.add_options()("manifest", po::value<std::string>()->required(), "suite manifest (JSON)")(
      "plugin", po::value<std::vector<std::string>>()->composing(),
      "shared library of extra methods/tasks (repeatable)");
  po::positional_options_description pos;
  pos.add("manifest", 1);
  po::variables_map vm;
  if (!parse("validate", "MANIFEST", opts, pos, args, vm)) return kOk;
  load_plugins(vm);
  const Manifest m = load_manifest(vm["manifest"].as<std::string>());
  if (!m.includes.empty()) {
    std::size_t total = 0;
    std::ostringstream each;
    for (const auto& sub : m.includes) {
      const std::size_t n = expand(load_manifest(sub)).size();
      total += n;
      each << "  " << sub << ": " << n << " cells\n";
    }
    std::cout << m.path << ": valid; a suite of " << m.includes.size() << " suites, " << total << " cells in all\n"
              << each.str();
    return kOk;
  }
  const auto cells = expand(m);
  const std::int64_t instances = cells.empty() ? 0 : cells.back().instance + 1;
  std::cout << m.path << ": valid; " << cells.size() << " cells (" << instances << " task instances x "
            << (instances ? cells.size() / instances : 0) << " method configurations)\n";
  // Unsupported pairs, grouped: method label x task -> reason -> count.
  std::map<std::string, std::map<std::string, int>> unsupported;
  std::int64_t n_unsupported = 0;
  Device dev;
  for (const auto& c : cells) {
    const Method& method = *MethodRegistry::instance().find(c.method_name);
    const Task& task = *TaskRegistry::instance().find(c.task_name);
    const Problem p = task.problem(c.task_params);
    if (Support s = method.supports(p, c.method_params, dev); !s) {
      ++unsupported[c.method_label + " x " + c.task_name][s.reason];
      ++n_unsupported;
    }
  }
  if (unsupported.empty()) {
    std::cout << "every cell is supported on " << dev.to_string() << "\n";
  } else {
    std::cout << n_unsupported << " cells are unsupported on " << dev.to_string() << " and will be recorded as such:\n";
    for (const auto& [pair, reasons] : unsupported)
      for (const auto& [reason, n] : reasons) std::cout << "  " << pair << " (" << n << " cells): " << reason << "\n";
  }
  return kOk;
}

int cmd_list(const std::vector<std::string>& args) {
  po::options_description opts("list options");
  opts.add_options()("what", po::value<std::string>()->required(), "methods, tasks or masks")(
      "plugin", po::value<std::vector<std::string>>()->composing(),
      "shared library of extra methods/tasks (repeatable)");
  po::positional_options_description pos;
  pos.add("what", 1);
  po::variables_map vm;
  if (!parse("list", "methods|tasks|masks", opts, pos, args, vm)) return kOk;
  load_plugins(vm);
  const std::string what = vm["what"].as<std::string>();
  if (what == "methods")
    std::cout << list_methods();
  else if (what == "tasks")
    std::cout << list_tasks();
  else if (what == "masks")
    std::cout << list_masks();
  else
    throw UsageError("attnbench list: expected methods, tasks or masks, got '" + what + "'");
  return kOk;
}

// A table to the file -o names, else to stdout.
void write_output(const po::variables_map& vm, const std::string& text) {
  if (!vm.count("output")) {
    std::cout << text;
    return;
  }
  std::ofstream out(vm["output"].as<std::string>(), std::ios::binary);
  if (!(out << text)) throw std::runtime_error("cannot write " + vm["output"].as<std::string>());
}

int cmd_report(const std::vector<std::string>& args) {
  po::options_description opts("report options");
  opts.add_options()("files", po::value<std::vector<std::string>>()->required(), "result files (HDF5)")(
      "format", po::value<std::string>()->default_value("md"), "md, latex or csv")(
      "metric", po::value<std::string>()->default_value(""),
      "pivot one metric: methods x shapes (latency_ms, gflops, speedup, peak_mb, or a task metric such as rel_l2); "
      "efficiency_length, ruler or niah for those tables")(
      "baseline", po::value<std::string>()->default_value(""),
      "speedups against this method label, matched by task instance across all the files (default: each "
      "file's manifest baseline, within the file)")("output,o", po::value<std::string>(),
                                                    "write here instead of stdout")(
      "figures", po::value<std::string>(),
      "also write SVG figures (needle heatmaps, latency and memory against length) and the retrieval tables into "
      "this directory; the paths written go to stderr");
  po::positional_options_description pos;
  pos.add("files", -1);
  po::variables_map vm;
  if (!parse(
          "report",
          "FILE.h5 [FILE.h5 ...] [--format md|latex|csv] [--metric NAME] [--baseline LABEL] [-o OUT] [--figures DIR]",
          opts, pos, args, vm))
    return kOk;
  ReportOptions ro;
  try {
    ro.format = parse_report_format(vm["format"].as<std::string>());
  } catch (const std::exception& e) {
    throw UsageError(std::string("attnbench report: --format: ") + e.what());
  }
  ro.metric = vm["metric"].as<std::string>();
  ro.baseline = vm["baseline"].as<std::string>();
  std::vector<ResultsFile> files;
  for (const auto& f : vm["files"].as<std::vector<std::string>>()) files.push_back(read_results(f));
  std::string text;
  try {
    text = render_report(files, ro);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("attnbench report: ") + e.what());
  }
  write_output(vm, text);
  if (vm.count("figures")) {
    // Stdout stays the table, for pipes; the list of files is a message.
    const std::vector<std::string> written = write_figures(files, vm["figures"].as<std::string>());
    for (const std::string& path : written) std::cerr << "wrote " << path << "\n";
    std::cerr << written.size() << " file(s) in " << vm["figures"].as<std::string>() << "\n";
  }
  return kOk;
}

int cmd_merge(const std::vector<std::string>& args) {
  po::options_description opts("merge options");
  opts.add_options()("files", po::value<std::vector<std::string>>()->required(),
                     "result files of the shards of one suite (attnbench run --shard I/N)")(
      "output,o", po::value<std::string>()->required(), "the merged result file")("overwrite", po::bool_switch(),
                                                                                  "replace an existing output file")(
      "plugin", po::value<std::vector<std::string>>()->composing(),
      "shared library of extra methods/tasks the suite used (repeatable): the stored manifest is expanded again");
  po::positional_options_description pos;
  pos.add("files", -1);
  po::variables_map vm;
  if (!parse("merge",
             "A.h5 B.h5 ... -o ALL.h5 [--overwrite] [--plugin LIB]\n\n"
             "Checks that the files come from the same manifest and build, refuses a cell held by two files, and\n"
             "writes one file with every cell. Exit codes: 0 every cell of the manifest is there; 1 merged, but\n"
             "cells are missing (their count, then their ids, on stderr); 2 bad input (nothing written).",
             opts, pos, args, vm))
    return kOk;
  load_plugins(vm);
  const std::string output = vm["output"].as<std::string>();
  if (!vm["overwrite"].as<bool>() && std::filesystem::exists(output))
    throw UsageError("attnbench merge: " + output + " exists; pass --overwrite to replace it");
  std::vector<ResultsFile> parts;
  for (const auto& f : vm["files"].as<std::vector<std::string>>()) parts.push_back(read_results(f));
  MergeResult mr;
  try {
    mr = merge_results(parts);
  } catch (const MergeError& e) {
    throw UsageError("attnbench merge: " + std::string(e.what()));
  }
  mr.merged.path = output;
  write_results(output, mr.merged);
  std::cout << "merged " << parts.size() << " file(s) into " << output << ": " << mr.merged.cells.size() << " of "
            << mr.merged.expected_cells << " cells\n";
  if (mr.missing.empty()) return kOk;
  std::cerr << mr.missing.size() << " cell(s) missing (no file holds them; `attnbench run MANIFEST -o " << output
            << " --resume` runs them):\n";
  for (const std::string& id : mr.missing) std::cerr << "  " << id << "\n";
  return kFailure;
}

int cmd_compare(const std::vector<std::string>& args) {
  po::options_description opts("compare options");
  opts.add_options()("a", po::value<std::string>()->required(), "the first run (A)")(
      "b", po::value<std::string>()->required(), "the second run (B), compared cell by cell with A")(
      "format", po::value<std::string>()->default_value("md"), "md, latex or csv")(
      "threshold", po::value<double>()->default_value(0.01), "|B/A - 1| up to this is \"the same\" (0.01: 1%)")(
      "strict", po::bool_switch(), "exit 1 when a cell's |B/A - 1| is above the threshold")(
      "output,o", po::value<std::string>(), "write here instead of stdout");
  po::positional_options_description pos;
  pos.add("a", 1).add("b", 1);
  po::variables_map vm;
  if (!parse("compare",
             "A.h5 B.h5 [--threshold 0.01] [--strict] [--format md|latex|csv] [-o OUT]\n\n"
             "The cells of B against the same cells (by id) of A: both medians, B/A - 1, the p-value of the\n"
             "Mann-Whitney U test of their samples, and a verdict. Exit codes: 0; 1 with --strict when a cell\n"
             "differs by more than the threshold; 2 bad input (no cell in common).",
             opts, pos, args, vm))
    return kOk;
  CompareOptions co;
  try {
    co.format = parse_report_format(vm["format"].as<std::string>());
  } catch (const std::exception& e) {
    throw UsageError(std::string("attnbench compare: --format: ") + e.what());
  }
  co.threshold = vm["threshold"].as<double>();
  if (!(co.threshold >= 0)) throw UsageError("attnbench compare: --threshold must be >= 0");
  const ResultsFile a = read_results(vm["a"].as<std::string>()), b = read_results(vm["b"].as<std::string>());
  Comparison c;
  try {
    c = compare_results(a, b, co);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("attnbench compare: ") + e.what());
  }
  write_output(vm, c.text);
  return vm["strict"].as<bool>() && c.over > 0 ? kFailure : kOk;
}

int cmd_env(const std::vector<std::string>& args) {
  po::options_description opts("env options");
  opts.add_options()("threads", po::value<int>()->default_value(0), "threads a run would use (0: OpenMP's default)");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!parse("env", "[--threads N]", opts, pos, args, vm)) return kOk;
  std::cout << collect_environment(0, vm["threads"].as<int>()).dump(2) << "\n";
  return kOk;
}

int dispatch(int argc, char** argv) {
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  // Timed runs pin OpenMP threads to cores unless the user chose otherwise. OpenMP reads these
  // variables when the program starts, so the process re-executes itself once with them set; the
  // environment record stores what was in force.
  // Under mpirun the launcher binds the ranks; the runner shares each node's cores among them.
  if (cmd == "run" && !mpi::launched() && !std::getenv("OMP_PROC_BIND") && !std::getenv("ATTNBENCH_NO_PIN")) {
    setenv("OMP_PROC_BIND", "close", 1);
    if (!std::getenv("OMP_PLACES")) setenv("OMP_PLACES", "cores", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then run unpinned
  }
  try {
    if (cmd == "run") return cmd_run(args);
    if (cmd == "validate") return cmd_validate(args);
    if (cmd == "list") return cmd_list(args);
    if (cmd == "report") return cmd_report(args);
    if (cmd == "merge") return cmd_merge(args);
    if (cmd == "compare") return cmd_compare(args);
    if (cmd == "env") return cmd_env(args);
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::cout << kUsage;
      return kOk;
    }
    std::cerr << "attnbench: unknown command '" << cmd << "'\n" << kUsage;
    return kBadInput;
  } catch (const UsageError& e) {
    std::cerr << e.what() << "\n";
    return kBadInput;
  } catch (const ManifestError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kBadInput;
  } catch (const ResultsError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kBadInput;
  } catch (const PluginError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "attnbench " << cmd << ": failed: " << e.what() << "\n";
    return kFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return kBadInput;
  }
  g_argv.assign(argv, argv + argc);
  if (std::string(argv[1]) == "run") mpi::init(&argc, &argv);
  const int rc = dispatch(argc, argv);
  mpi::finalize();
  return rc;
}
