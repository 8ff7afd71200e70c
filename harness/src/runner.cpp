// The runner: per task instance, inputs and the oracle once; per cell, plan, timed runs, a checked run, score.
#include "attnbench/runner.hpp"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <map>
#include <new>
#include <optional>
#include <iostream>
#include <ostream>
#include <set>

#include "attnbench/backend.hpp"
#include "attnbench/environment.hpp"
#include "attnbench/memory.hpp"
#include "attnbench/method.hpp"
#include "attnbench/mpi_runtime.hpp"
#include "attnbench/task.hpp"
#include "attnbench/watchdog.hpp"

#ifdef ATTNBENCH_HAVE_MPI
#include <mpi.h>
#endif

namespace attnbench {

namespace {

double unix_now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

void fill_problem(CellRecord& r, const Problem& p) {
  r.batch = p.batch;
  r.heads = p.heads;
  r.kv_heads = p.kv_heads;
  r.q_len = p.q_len;
  r.kv_len = p.kv_len;
  r.head_dim = p.head_dim;
  r.value_dim = p.value_dim;
  r.dtype = std::string(to_string(p.dtype));
  r.mask = p.mask ? p.mask->name() : "full";
  r.causal = p.causal();
}

// What a record says about its cell besides the outcome: identity, parameters, where it ran, its shape.
void label_record(CellRecord& r, const Cell& cell, const Method& method, const Task& task, const Device& device) {
  r.index = cell.index;
  r.id = cell.id;
  r.method = cell.method_label;
  r.method_name = cell.method_name;
  r.family = to_string(method.info().family);
  r.method_params = cell.method_params.canonical();
  r.task = cell.task_name;
  r.task_kind = task.kind() == TaskKind::efficiency ? "efficiency" : "retrieval";
  r.task_params = cell.task_params.canonical();
  r.seed = cell.seed;
  r.device = device.to_string();
  if (r.batch == 0) {
    try {
      fill_problem(r, task.problem(cell.task_params));
    } catch (const std::exception&) {  // the shape stays zero; the reason already says why
    }
  }
}

std::string shape_of(const Task& task, const Cell& cell) {
  try {
    return task.problem(cell.task_params).describe();
  } catch (const std::exception&) {
    return cell.task_params.canonical();
  }
}

bool all_finite(const Tensor& t) {
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t.get(i))) return false;
  return true;
}

std::string format_line(std::int64_t done, std::int64_t total, const CellRecord& r, const std::string& shape) {
  char buf[512];
  if (r.status == "ok")
    std::snprintf(buf, sizeof buf, "[%lld/%lld] %s | %s %s | ok %.4g ms ±%.2f%% (%lld samples, %s)",
                  static_cast<long long>(done), static_cast<long long>(total), r.method.c_str(), r.task.c_str(),
                  shape.c_str(), r.timing.median_s * 1e3, r.timing.rse * 100, static_cast<long long>(r.timing.samples),
                  r.timing.stop_reason.c_str());
  else
    std::snprintf(buf, sizeof buf, "[%lld/%lld] %s | %s %s | %s: %s", static_cast<long long>(done),
                  static_cast<long long>(total), r.method.c_str(), r.task.c_str(), shape.c_str(), r.status.c_str(),
                  r.reason.c_str());
  return buf;
}

#ifdef ATTNBENCH_HAVE_MPI
// Samples of a distributed cell: all ranks start together (barrier), each takes its own sample with the
// device's sampler, and the sample is the slowest rank's time (discarded on every rank when any rank
// discarded it); rank 0's stop decision is broadcast so that every rank leaves the loop at the same sample.
class MpiSampler final : public Sampler {
 public:
  MpiSampler(MPI_Comm comm, std::unique_ptr<Sampler> inner) : comm_(comm), inner_(std::move(inner)) {}
  void warmup() override { inner_->warmup(); }
  std::optional<double> sample(bool cold) override {
    MPI_Barrier(comm_);
    const std::optional<double> mine = inner_->sample(cold);
    double t[2] = {mine ? *mine : 0.0, mine ? 0.0 : 1.0}, all[2] = {0, 0};  // slowest time, any discard
    MPI_Allreduce(t, all, 2, MPI_DOUBLE, MPI_MAX, comm_);
    if (all[1] > 0) return std::nullopt;
    return all[0];
  }
  int agree(int decision) override {
    MPI_Bcast(&decision, 1, MPI_INT, 0, comm_);
    return decision;
  }

 private:
  MPI_Comm comm_;
  std::unique_ptr<Sampler> inner_;
};

// True on every rank when every rank of `comm` passed `ok`.
bool all_ranks_ok(MPI_Comm comm, bool ok) {
  int mine = ok ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm);
  return all == 1;
}
#endif

// Where a cell runs: the device, its backend (null on the CPU) and, for a distributed method, the
// communicator of the ranks that run it together (null for a single process).
struct CellPlace {
  Device device;
  DeviceBackend* backend = nullptr;
  const void* comm = nullptr;  // MPI_Comm*
  int rank = 0;
};

void fail(CellRecord& r, std::string why) {
  r.status = "failed";
  r.reason = std::move(why);
}

// One cell, start to end. Errors of the method become a failed record; nothing escapes. On the ranks
// of a distributed cell other than 0 the record is built but not kept.
CellRecord run_cell(const Cell& cell, const Method& method, const Task& task, const TaskInstance& inst,
                    const std::function<const Tensor*()>& reference, TimingPolicy policy, const CellPlace& where,
                    CacheFlusher& flusher) {
  CellRecord r;
  const auto t_start = std::chrono::steady_clock::now();
  r.started_unix = unix_now();
  const Problem& p = inst.problem;
  const Device& device = where.device;
  fill_problem(r, p);
  r.threads = omp_get_max_threads();
  const bool on_device = !device.is_cpu();
  const DeviceImpl* impl = on_device ? MethodRegistry::instance().impl(method.info().name, device.kind) : nullptr;
#ifdef ATTNBENCH_HAVE_MPI
  const MPI_Comm* comm = static_cast<const MPI_Comm*>(where.comm);
#else
  const void* comm = nullptr;
#endif
  bool prepared = false;
  std::unique_ptr<Plan> plan;
  Tensor out;
  try {
    r.flops = method.flops(p, cell.method_params);
    r.bytes = method.bytes(p, cell.method_params);
    Support s = on_device ? (impl ? impl->supports(p, cell.method_params, device)
                                  : Support::no(method.info().name + " has no CUDA implementation in this build"))
                          : method.supports(p, cell.method_params, device);
    if (!s) {  // deterministic: every rank of a distributed cell reaches the same answer
      r.status = "unsupported";
      r.reason = s.reason;
      return r;
    }
    if (on_device) {
      where.backend->select(device);
      if (!policy.max_noise_given) policy.max_noise = kGpuMaxNoise;
    }
    out = make_output(p, impl ? impl->output_dtype(p) : method.output_dtype(p));
    memory::reset_peak();
    if (on_device) where.backend->reset_peak(device);
    plan = impl ? impl->plan(p, cell.method_params, device) : method.plan(p, cell.method_params, device);
    plan->prepare(inst.inputs);
    prepared = true;
  } catch (const std::bad_alloc&) {
    fail(r, "out of memory");
  } catch (const std::exception& e) {
    fail(r, std::string("error: ") + e.what());
  }
#ifdef ATTNBENCH_HAVE_MPI
  if (comm && !all_ranks_ok(*comm, prepared)) {
    if (prepared) fail(r, "failed on another rank while planning (see that rank's output)");
    prepared = false;
  }
#endif
  if (!prepared) return r;

  try {
    std::string note;
    Counters before;
    if (on_device) before = where.backend->state(device, &note);
    const std::function<void()> once = [&] { plan->run(inst.inputs, out); };
    Measurement m;
    if (comm) {
#ifdef ATTNBENCH_HAVE_MPI
      MpiSampler sampler(*comm, on_device ? where.backend->sampler(*plan, inst.inputs, out, device)
                                          : function_sampler(once, &flusher));
      m = measure(sampler, policy);
#endif
    } else if (on_device) {
      m = where.backend->measure(*plan, inst.inputs, out, policy, device);
    } else {
      m = measure(once, policy, &flusher);
    }
    r.timing = m.stats;
    r.samples = std::move(m.samples);
    if (r.timing.stop_reason == "timeout") {
      char buf[160];
      std::snprintf(buf, sizeof buf, "timeout: %lld run(s) took longer than the cell limit of %g s (timing.timeout_s)",
                    static_cast<long long>(r.timing.warmup + r.timing.samples), policy.timeout_s);
      fail(r, buf);
      return r;
    }
    Counters after;
    if (on_device) after = where.backend->state(device, &note);
    // The scored output comes from one fresh run into a poisoned buffer (on the device too).
    out.poison();
    plan->poison();
    plan->run(inst.inputs, out);
    if (on_device) where.backend->synchronize(device);
    plan->collect(out);
    const Counters counters = plan->counters();
    r.peak_bytes = on_device ? where.backend->peak_bytes(device) : memory::peak_bytes();
    if (where.rank != 0) {  // rank 0 scores a distributed cell
      r.status = "ok";
      return r;
    }
    const Tensor* ref = task.needs_reference() ? reference() : nullptr;
    if (!all_finite(out)) {
      fail(r, "output has NaN or Inf values");
      return r;
    }
    r.metrics = task.score(inst, out, ref);
    for (const auto& [name, value] : r.metrics)
      if (!std::isfinite(value)) {
        fail(r, "metric " + name + " is not finite");
        return r;
      }
    // What the plan counted, and on a device its state before and after sampling, beside the task's metrics.
    for (const auto& c : counters) r.metrics.push_back(c);
    if (on_device) {
      r.metrics.emplace_back("discarded_samples", static_cast<double>(r.timing.discarded));
      for (const auto& [k, v] : before) r.metrics.emplace_back("device." + k + ".before", v);
      for (const auto& [k, v] : after) r.metrics.emplace_back("device." + k + ".after", v);
    }
    r.status = "ok";
  } catch (const std::bad_alloc&) {
    fail(r, "out of memory");
  } catch (const std::exception& e) {
    fail(r, std::string("error: ") + e.what());
  }
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return r;
}

}  // namespace

namespace {

#ifdef ATTNBENCH_HAVE_MPI
// Rank 0's text, on every rank.
std::string broadcast_string(std::string s) {
  long long n = static_cast<long long>(s.size());
  MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  s.resize(static_cast<std::size_t>(n));
  if (n > 0) MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD);
  return s;
}
#endif

}  // namespace

RunSummary run_manifest(const Manifest& m, const RunOptions& opts) {
  const int wrank = mpi::world_rank(), wsize = mpi::world_size();
  const bool root = wrank == 0;
  if (opts.threads > 0)
    omp_set_num_threads(opts.threads);
  else if (mpi::active())  // the node's cores are shared among the ranks on it
    omp_set_num_threads(std::max(1, omp_get_num_procs() / std::max(1, mpi::local_size())));

  std::vector<Cell> cells = expand(m);
  if (!opts.shard.whole()) {
    std::vector<double> costs;
    for (const auto& c : cells) costs.push_back(estimate_cost(c));
    std::vector<Cell> mine;
    for (std::size_t i : select_shard(cells, costs, opts.shard)) mine.push_back(cells[i]);
    cells = std::move(mine);
  }
  const std::string shard = opts.shard.whole() ? "" : opts.shard.to_string();

  ResultsFile rf;
  std::set<std::string> done;
  std::string error;  // rank 0's, shared so that every rank stops
  if (root) {
    try {
      if (opts.resume && std::filesystem::exists(opts.output)) {
        rf = read_results(opts.output);
        if (rf.manifest_text != m.text)
          throw ResultsError(opts.output + ": was written by a different manifest (or a different version of " +
                             (m.path.empty() ? std::string("it") : m.path) + "); --resume needs the same manifest");
        if (rf.shard != shard)
          throw ResultsError(opts.output + ": holds " + (rf.shard.empty() ? "the whole suite" : "shard " + rf.shard) +
                             ", not " + (shard.empty() ? "the whole suite" : "shard " + shard) +
                             "; --resume needs the same --shard");
        std::set<std::string> valid;
        for (const auto& c : cells) valid.insert(c.id);
        for (const auto& r : rf.cells) {
          if (!valid.count(r.id))
            throw ResultsError(opts.output + ": holds cell '" + r.id + "' that the manifest does not expand to");
          done.insert(r.id);
        }
      } else {
        json env = collect_environment(m.seed, opts.threads);
        env["device"] = opts.device.to_string();
        if (!opts.device_note.empty()) env["device_note"] = opts.device_note;
        if (!opts.device.is_cpu())
          if (DeviceBackend* b = device_backend(opts.device.kind)) env["device_info"] = json::parse(b->environment(opts.device));
        if (mpi::active())
          env["mpi"] = {{"library", mpi::library_version()}, {"world_size", wsize}, {"local_size", mpi::local_size()}};
        rf.manifest_text = m.text;
        rf.manifest_name = m.name;
        rf.manifest_path = m.path;
        rf.environment = env.dump();
      }
      rf.path = opts.output;
      rf.shard = shard;
      rf.expected_cells = static_cast<std::int64_t>(cells.size());
      if (auto dir = std::filesystem::path(opts.output).parent_path(); !dir.empty())
        std::filesystem::create_directories(dir);
      write_results(opts.output, rf);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
#ifdef ATTNBENCH_HAVE_MPI
  if (wsize > 1) {
    error = broadcast_string(error);
    std::string ids;
    for (const auto& id : done) ids += id + '\n';
    ids = broadcast_string(ids);
    done.clear();
    for (std::size_t a = 0, b; (b = ids.find('\n', a)) != std::string::npos; a = b + 1) done.insert(ids.substr(a, b - a));
  }
#endif
  if (!error.empty()) throw ResultsError(error);

  // The communicators of distributed cells, one per rank count, made by every rank up front.
#ifdef ATTNBENCH_HAVE_MPI
  std::map<int, MPI_Comm> comms;
  if (mpi::active()) {
    std::set<int> counts;
    for (const auto& c : cells)
      if (int n = MethodRegistry::instance().find(c.method_name)->ranks(c.method_params); n > 1 && n <= wsize)
        counts.insert(n);
    for (int n : counts) {
      MPI_Comm c = MPI_COMM_NULL;
      MPI_Comm_split(MPI_COMM_WORLD, wrank < n ? 0 : MPI_UNDEFINED, wrank, &c);
      comms[n] = c;
    }
  }
#endif

  RunSummary sum;
  sum.total = static_cast<std::int64_t>(cells.size());
  sum.skipped_done = static_cast<std::int64_t>(done.size());
  CacheFlusher flusher;
  const Method* oracle = MethodRegistry::instance().find("reference");
  DeviceBackend* backend = opts.device.is_cpu() ? nullptr : device_backend(opts.device.kind);

  // A cell whose method never returns, or a task that never builds the instance its cells share: the
  // watchdog (rank 0's) records the cell (or the instance's cells) as failed, then restarts the process
  // with --resume, which goes on past them; under mpirun, or without a way to restart, the run ends there
  // with kHungExit and the same command with --resume goes on. The float64 oracle's time is not counted.
  std::optional<Watchdog> watchdog;
  if (root) watchdog.emplace();
  const bool can_restart = opts.restart && !mpi::active();
  // `hung`: the cells the hang takes down (labelled, started_unix set), `what` the part that hung.
  auto on_hang = [&](std::vector<CellRecord> hung, const char* what, std::int64_t done, const std::string& shape) {
    char buf[320];
    std::snprintf(buf, sizeof buf, "hung: %s after %g s (timing.hang_s); %s", what, m.timing.hang_s,
                  can_restart ? (hung.size() > 1 ? "the process was restarted past these cells"
                                                 : "the process was restarted past this cell")
                              : (hung.size() > 1 ? "the run stopped here; --resume goes on past these cells"
                                                 : "the run stopped here; --resume goes on past this cell"));
    for (CellRecord& r : hung) {
      fail(r, buf);
      r.wall_s = unix_now() - r.started_unix;
      rf.cells.push_back(r);
    }
    std::ostream& say = opts.progress ? *opts.progress : std::cerr;
    try {
      write_results(opts.output, rf);
    } catch (const std::exception& e) {
      say << "\nattnbench run: a cell hung and its record could not be written (" << e.what() << ")" << std::endl;
      std::_Exit(kHungExit);
    }
    if (opts.progress)
      for (const CellRecord& r : hung)
        say << (opts.progress_tty ? "\r\x1b[K" : "") << format_line(done++, sum.total, r, shape) << std::endl;
    if (can_restart) {
      say << "attnbench run: restarting with --resume to go on past the hung cell" << std::endl;
      opts.restart();  // returns only when it could not
    }
    say << "attnbench run: stopped at a hung cell (recorded in " << opts.output
        << "); the same command with --resume goes on past it" << std::endl;
    std::_Exit(kHungExit);
  };

  std::size_t i = 0;
  while (i < cells.size()) {
    // The cells of one task instance are consecutive; they share inputs and the oracle's output.
    std::size_t end = i;
    while (end < cells.size() && cells[end].instance == cells[i].instance) ++end;
    const Task& task = *TaskRegistry::instance().find(cells[i].task_name);
    std::unique_ptr<TaskInstance> inst;
    std::optional<Tensor> ref;
    auto reference = [&]() -> const Tensor* {
      if (!ref) {
        const WatchdogPause not_the_method(watchdog ? &*watchdog : nullptr);  // the oracle's time is not the cell's
        if (!oracle) throw std::runtime_error("no 'reference' method registered to score against");
        Tensor out = make_output(inst->problem, oracle->output_dtype(inst->problem));
        // A sampled oracle where the task asks for one (check_every > 1): the skipped rows stay NaN.
        const json given = inst->check_every > 1 ? json{{"row_stride", inst->check_every}} : json::object();
        oracle->plan(inst->problem, complete_params(oracle->info().params, given), Device{})->run(inst->inputs, out);
        ref = std::move(out);
      }
      return &*ref;
    };
    for (; i < end; ++i) {
      const Cell& cell = cells[i];
      if (done.count(cell.id)) continue;
      const Method& method = *MethodRegistry::instance().find(cell.method_name);
      const int needed = method.ranks(cell.method_params);
      CellPlace where{opts.device, backend, nullptr, wrank};
      bool mine = root;  // single-process cells run on rank 0
      CellRecord r;
      if (needed > wsize) {
        mine = false;
        r.status = "unsupported";
        r.reason = method.info().name + " with ranks=" + std::to_string(needed) + " needs " + std::to_string(needed) +
                   " MPI ranks; this run has " +
                   (mpi::active() ? std::to_string(wsize) : std::string("one process, not started by mpirun")) +
                   " (start it with mpirun -n " + std::to_string(needed) + ")";
      } else if (needed > 1) {
#ifdef ATTNBENCH_HAVE_MPI
        mine = wrank < needed;
        where.comm = &comms.at(needed);
        // On a CUDA run a distributed method with a CUDA implementation (NCCL) runs each rank on the
        // GPU of its local rank; otherwise it runs on the CPU ranks through MPI.
        if (backend && MethodRegistry::instance().impl(cell.method_name, opts.device.kind)) {
          std::string why;
          const int count = std::max(1, backend->device_count(&why));
          where.device = Device{opts.device.kind, (opts.device.index + mpi::local_rank()) % count};
        } else {
          where.device = Device{};
          where.backend = nullptr;
        }
#endif
      }
      if (mine) {
        mpi::set_cell_comm(where.comm);
        try {
          if (!inst) {
            // A task that never builds its instance takes down every cell of the instance still to run
            // on this process's ranks: they are recorded at once, so a restart does not build it again.
            if (watchdog) {
              std::vector<CellRecord> hung;
              const double now = unix_now();
              for (std::size_t j = i; j < end; ++j) {
                const Method& mj = *MethodRegistry::instance().find(cells[j].method_name);
                if (done.count(cells[j].id) || mj.ranks(cells[j].method_params) > wsize) continue;
                CellRecord h;
                h.started_unix = now;
                label_record(h, cells[j], mj, task, opts.device);
                hung.push_back(std::move(h));
              }
              watchdog->arm(m.timing.hang_s, [&, hung]() mutable {
                on_hang(std::move(hung), "the task had not built its instance", sum.skipped_done + sum.ran + 1,
                        shape_of(task, cell));
              });
            }
            inst = task.make(cell.task_params, cell.seed);
            if (watchdog) watchdog->disarm();
          }
          if (watchdog) {
            CellRecord hung;
            hung.started_unix = unix_now();
            label_record(hung, cell, method, task, where.device);
            watchdog->arm(m.timing.hang_s, [&, hung]() mutable {
              on_hang({std::move(hung)}, "the method had not returned", sum.skipped_done + sum.ran + 1,
                      shape_of(task, cell));
            });
          }
          r = run_cell(cell, method, task, *inst, reference, m.timing, where, flusher);
        } catch (const std::exception& e) {  // the task itself failed to build its instance
          fail(r, std::string("task error: ") + e.what());
        }
        mpi::set_cell_comm(nullptr);
      }
      // Still armed here: a rank that left a distributed cell early (an exception mid-run) leaves the
      // others in a collective, and rank 0's watchdog ends that too.
      if (wsize > 1) mpi::quiet_barrier();  // the idle ranks wait here without spinning
      if (watchdog) watchdog->disarm();
      if (!root) continue;
      label_record(r, cell, method, task, where.device);
      rf.cells.push_back(r);
      write_results(opts.output, rf);
      ++sum.ran;
      if (r.status == "ok")
        ++sum.ok;
      else if (r.status == "failed")
        ++sum.failed;
      else
        ++sum.unsupported;
      if (opts.progress) {
        const std::string line = format_line(sum.skipped_done + sum.ran, sum.total, r, shape_of(task, cell));
        // On a terminal one line is rewritten in place, except for cells that did not succeed;
        // elsewhere (logs, CI) every cell gets its own line.
        if (opts.progress_tty && r.status == "ok" && sum.skipped_done + sum.ran < sum.total)
          *opts.progress << "\r\x1b[K" << line << std::flush;
        else
          *opts.progress << (opts.progress_tty ? "\r\x1b[K" : "") << line << std::endl;
      }
    }
  }
#ifdef ATTNBENCH_HAVE_MPI
  for (auto& [n, c] : comms)
    if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
#endif
  return sum;
}

}  // namespace attnbench
