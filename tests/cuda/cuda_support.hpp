// Runs a method's CUDA implementation the way the runner does: plan, prepare (upload), poison the device
// output, run, synchronise, collect (download) into a host output that was poisoned as well.
#pragma once
#include <stdexcept>
#include <string>

#include "attnbench/backend.hpp"
#include "support/problems.hpp"

namespace attnbench::testing {

inline Tensor run_on_cuda(const std::string& name, const Problem& p, const Inputs& inputs,
                          const json& given = json::object()) {
  const Method& m = method_named(name);
  const DeviceImpl* impl = MethodRegistry::instance().impl(name, Device::Kind::cuda);
  if (!impl) throw std::runtime_error("method '" + name + "' has no CUDA implementation");
  const Device gpu{Device::Kind::cuda, 0};
  DeviceBackend& backend = *device_backend(Device::Kind::cuda);
  backend.select(gpu);
  const Params params = complete_params(m.info().params, given);
  const Support s = impl->supports(p, params, gpu);
  if (!s) throw std::runtime_error("method '" + name + "' refused " + p.describe() + " on cuda: " + s.reason);
  Tensor out = make_output(p, impl->output_dtype(p));
  out.poison();
  auto plan = impl->plan(p, params, gpu);
  plan->prepare(inputs);
  plan->poison();
  plan->run(inputs, out);
  backend.synchronize(gpu);
  plan->collect(out);
  return out;
}

}  // namespace attnbench::testing
