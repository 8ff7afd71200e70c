// Micro benchmark: flash against dense on the CPU over sequence length, head dim and mask, with
// GFLOP/s and the peak heap memory of plan + one run. Planning stays outside the timed loop.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "attnbench/memory.hpp"
#include "attnbench/method.hpp"
#include "attnbench/problem.hpp"
#include "datasets/generators.hpp"

namespace {

using namespace attnbench;

constexpr std::int64_t kBatch = 1, kHeads = 8;

void attention(benchmark::State& state, const std::string& method_name, std::int64_t len, std::int64_t head_dim,
               bool causal) {
  Problem p;
  p.batch = kBatch;
  p.heads = p.kv_heads = kHeads;
  p.q_len = p.kv_len = len;
  p.head_dim = p.value_dim = head_dim;
  p.scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  p.dtype = Dtype::f32;
  p.mask = make_mask(causal ? "causal" : "full", json::object(), p.mask_shape());

  const Method* method = MethodRegistry::instance().find(method_name);
  if (!method) {
    state.SkipWithError(("no method " + method_name).c_str());
    return;
  }
  const Params params = complete_params(method->info().params, json::object());
  if (const Support s = method->supports(p, params, Device{}); !s) {
    state.SkipWithError(s.reason.c_str());
    return;
  }
  const Inputs in = datasets::gaussian_inputs(p, 1);
  Tensor out = make_output(p, method->output_dtype(p));

  // Peak over plan + runs: runs allocate nothing, so it is the peak of plan + one run. No separate
  // warm-up: plans touch what they allocate, and a dense run at L = 8192 takes seconds.
  memory::reset_peak();
  auto plan = method->plan(p, params, Device{});
  for (auto _ : state) {
    plan->run(in, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double peak_mib = static_cast<double>(memory::peak_bytes()) / (1024.0 * 1024.0);
  state.counters["GFLOP/s"] =
      benchmark::Counter(method->flops(p, params) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_MiB"] = peak_mib;
}

}  // namespace

int main(int argc, char** argv) {
  for (const std::int64_t head_dim : {64, 128})
    for (const bool causal : {false, true})
      for (const std::int64_t len : {512, 1024, 2048, 4096, 8192})
        for (const char* method : {"flash", "dense"}) {
          const std::string name = std::string(method) + "/L" + std::to_string(len) + "/D" + std::to_string(head_dim) +
                                   (causal ? "/causal" : "/full");
          benchmark::RegisterBenchmark(name.c_str(), attention, std::string(method), len, head_dim, causal)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime()
              ->MeasureProcessCPUTime()  // the CPU column counts every OpenMP thread
              ->MinTime(0.2);
        }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
