// The runner: per task instance, inputs and the oracle once; per cell, plan, timed runs, a checked run, score.
#include "attnbench/runner.hpp"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <new>
#include <ostream>
#include <set>

#include "attnbench/environment.hpp"
#include "attnbench/memory.hpp"
#include "attnbench/method.hpp"
#include "attnbench/task.hpp"

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

// One cell, start to end. Errors of the method become a failed record; nothing escapes.
CellRecord run_cell(const Cell& cell, const Method& method, const Task& task, const TaskInstance& inst,
                    const std::function<const Tensor*()>& reference, const TimingPolicy& policy, const Device& device,
                    CacheFlusher& flusher) {
  CellRecord r;
  const auto t_start = std::chrono::steady_clock::now();
  r.started_unix = unix_now();
  const Problem& p = inst.problem;
  fill_problem(r, p);
  r.threads = omp_get_max_threads();
  try {
    r.flops = method.flops(p, cell.method_params);
    r.bytes = method.bytes(p, cell.method_params);
    if (Support s = method.supports(p, cell.method_params, device); !s) {
      r.status = "unsupported";
      r.reason = s.reason;
      return r;
    }
    const Tensor* ref = task.needs_reference() ? reference() : nullptr;
    Tensor out = make_output(p, method.output_dtype(p));
    memory::reset_peak();
    auto plan = method.plan(p, cell.method_params, device);
    Measurement m = measure([&] { plan->run(inst.inputs, out); }, policy, &flusher);
    r.timing = m.stats;
    r.samples = std::move(m.samples);
    if (r.timing.stop_reason == "timeout") {
      r.status = "failed";
      char buf[160];
      std::snprintf(buf, sizeof buf, "timeout: %lld run(s) took longer than the cell limit of %g s (timing.timeout_s)",
                    static_cast<long long>(r.timing.warmup + r.timing.samples), policy.timeout_s);
      r.reason = buf;
      return r;
    }
    // The scored output comes from one fresh run into a poisoned buffer.
    out.poison();
    plan->run(inst.inputs, out);
    r.peak_bytes = memory::peak_bytes();
    if (!all_finite(out)) {
      r.status = "failed";
      r.reason = "output has NaN or Inf values";
      return r;
    }
    r.metrics = task.score(inst, out, ref);
    for (const auto& [name, value] : r.metrics)
      if (!std::isfinite(value)) {
        r.status = "failed";
        r.reason = "metric " + name + " is not finite";
        return r;
      }
    r.status = "ok";
  } catch (const std::bad_alloc&) {
    r.status = "failed";
    r.reason = "out of memory";
  } catch (const std::exception& e) {
    r.status = "failed";
    r.reason = std::string("error: ") + e.what();
  }
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return r;
}

}  // namespace

RunSummary run_manifest(const Manifest& m, const RunOptions& opts) {
  if (opts.threads > 0) omp_set_num_threads(opts.threads);
  const std::vector<Cell> cells = expand(m);

  ResultsFile rf;
  std::set<std::string> done;
  if (opts.resume && std::filesystem::exists(opts.output)) {
    rf = read_results(opts.output);
    if (rf.manifest_text != m.text)
      throw ResultsError(opts.output + ": was written by a different manifest (or a different version of " +
                         (m.path.empty() ? std::string("it") : m.path) + "); --resume needs the same manifest");
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
    rf.manifest_text = m.text;
    rf.manifest_name = m.name;
    rf.manifest_path = m.path;
    rf.environment = env.dump();
  }
  rf.path = opts.output;
  rf.expected_cells = static_cast<std::int64_t>(cells.size());
  if (auto dir = std::filesystem::path(opts.output).parent_path(); !dir.empty())
    std::filesystem::create_directories(dir);
  write_results(opts.output, rf);

  RunSummary sum;
  sum.total = static_cast<std::int64_t>(cells.size());
  sum.skipped_done = static_cast<std::int64_t>(done.size());
  CacheFlusher flusher;
  const Method* oracle = MethodRegistry::instance().find("reference");

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
        if (!oracle) throw std::runtime_error("no 'reference' method registered to score against");
        Tensor out = make_output(inst->problem, oracle->output_dtype(inst->problem));
        oracle->plan(inst->problem, complete_params(oracle->info().params, json::object()), Device{})
            ->run(inst->inputs, out);
        ref = std::move(out);
      }
      return &*ref;
    };
    for (; i < end; ++i) {
      const Cell& cell = cells[i];
      if (done.count(cell.id)) continue;
      const Method& method = *MethodRegistry::instance().find(cell.method_name);
      CellRecord r;
      try {
        if (!inst) inst = task.make(cell.task_params, cell.seed);
        r = run_cell(cell, method, task, *inst, reference, m.timing, opts.device, flusher);
      } catch (const std::exception& e) {  // the task itself failed to build its instance
        r.status = "failed";
        r.reason = std::string("task error: ") + e.what();
      }
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
      r.device = opts.device.to_string();
      if (r.batch == 0) {
        try {
          fill_problem(r, task.problem(cell.task_params));
        } catch (const std::exception&) {  // the shape stays zero; the reason already says why
        }
      }
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
        std::string shape;
        try {
          shape = task.problem(cell.task_params).describe();
        } catch (const std::exception&) {
          shape = cell.task_params.canonical();
        }
        const std::string line = format_line(sum.skipped_done + sum.ran, sum.total, r, shape);
        // On a terminal one line is rewritten in place, except for cells that did not succeed;
        // elsewhere (logs, CI) every cell gets its own line.
        if (opts.progress_tty && r.status == "ok" && sum.skipped_done + sum.ran < sum.total)
          *opts.progress << "\r\x1b[K" << line << std::flush;
        else
          *opts.progress << (opts.progress_tty ? "\r\x1b[K" : "") << line << std::endl;
      }
    }
  }
  return sum;
}

}  // namespace attnbench
