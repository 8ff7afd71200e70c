// The plugin interface of an attention method: declared parameters, support, cost, and a Plan to run.
//
// A Method answers questions about a Problem; plan() does every piece of set-up once (allocation,
// random features, block maps), and Plan::run is the only call the harness times.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attnbench/device.hpp"
#include "attnbench/params.hpp"
#include "attnbench/problem.hpp"

namespace attnbench {

enum class Family { exact, sparse_static, sparse_dynamic, linear, low_rank, decode, distributed };
std::string to_string(Family f);

// An expected refusal: a value with a sentence a user can act on, not an exception.
struct Support {
  bool ok = true;
  std::string reason;
  static Support yes() { return {}; }
  static Support no(std::string why) { return {false, std::move(why)}; }
  explicit operator bool() const { return ok; }
};

// Named figures a plan counts besides time (bytes communicated, per-rank busy time, device workspace);
// the runner records them with the task's metrics.
using Counters = std::vector<std::pair<std::string, double>>;

// The harness calls, in order: prepare(in) once, untimed; run(in, out) for warm-up and every timed
// sample; then poison(), run(in, out) and collect(out) for the scored output; counters() last.
// A CPU plan needs only run(). A device plan uploads its inputs in prepare(), runs on the device in
// run() (asynchronously: the backend's clock brackets it), fills its device output with NaN in
// poison() and downloads it in collect(). A distributed plan takes its rank's shard in prepare()
// and gathers the output to rank 0 in collect().
class Plan {
 public:
  virtual ~Plan() = default;
  virtual void prepare(const Inputs& /*in*/) {}
  // Computes `out` from `in`. Must write every element of `out`; the harness poisons it first.
  virtual void run(const Inputs& in, Tensor& out) = 0;
  virtual void poison() {}
  virtual void collect(Tensor& /*out*/) {}
  virtual Counters counters() const { return {}; }
};

struct MethodInfo {
  std::string name;
  Family family = Family::exact;
  std::string summary;    // one line: what it is
  std::string reference;  // one line: the paper it comes from
  std::vector<ParamSpec> params;
  std::vector<std::string> backends{"cpu"};
};

class Method {
 public:
  virtual ~Method() = default;
  virtual MethodInfo info() const = 0;
  virtual Support supports(const Problem& p, const Params& params, const Device& d) const;
  virtual double flops(const Problem& p, const Params& params) const;
  virtual double bytes(const Problem& p, const Params& params) const;
  // The element type the method writes; the float64 oracle writes fp64, everything else the input's.
  virtual Dtype output_dtype(const Problem& p) const { return p.dtype; }
  virtual std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device& d) const = 0;
  // MPI ranks one cell of this method needs (distributed methods: their `ranks` parameter).
  virtual int ranks(const Params& /*params*/) const { return 1; }
};

// A method that exists only as a device implementation (cublas, flash_sync): info().backends is empty,
// the CPU refuses it with a sentence, on a device supports() asks that device's DeviceImpl, and plan()
// is never called (the runner plans through the DeviceImpl).
class DeviceOnlyMethod : public Method {
 public:
  Support supports(const Problem& p, const Params& params, const Device& d) const override;
  std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device& d) const override;
};

// A method's implementation on a device other than the CPU, registered beside the method under its name
// (the CUDA kernels register one for each method they implement, and GPU-only methods such as `cublas`
// register a Method whose CPU backend list is empty). On that device the runner asks only the DeviceImpl.
class DeviceImpl {
 public:
  virtual ~DeviceImpl() = default;
  virtual Support supports(const Problem& p, const Params& params, const Device& d) const = 0;
  virtual std::unique_ptr<Plan> plan(const Problem& p, const Params& params, const Device& d) const = 0;
  // The element type written on this device (the CPU method's choice unless overridden).
  virtual Dtype output_dtype(const Problem& p) const { return p.dtype; }
};

class MethodRegistry {
 public:
  static MethodRegistry& instance();
  void add(std::unique_ptr<Method> m);  // throws on a duplicate name
  const Method* find(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted

  void add_impl(const std::string& method, Device::Kind kind, std::unique_ptr<DeviceImpl> impl);
  const DeviceImpl* impl(const std::string& method, Device::Kind kind) const;  // null: none built
  // "cpu" where info().backends says so, plus every device with a registered DeviceImpl.
  std::vector<std::string> backends(const std::string& method) const;

 private:
  std::map<std::string, std::unique_ptr<Method>> methods_;
  std::map<std::pair<std::string, Device::Kind>, std::unique_ptr<DeviceImpl>> impls_;
};

template <class M>
struct MethodRegistration {
  MethodRegistration() { MethodRegistry::instance().add(std::make_unique<M>()); }
};

template <class I>
struct DeviceImplRegistration {
  DeviceImplRegistration(const char* method, Device::Kind kind) {
    MethodRegistry::instance().add_impl(method, kind, std::make_unique<I>());
  }
};

}  // namespace attnbench

// Registers method class M when the object file is linked: one line at the bottom of its source file.
#define ATTNBENCH_REGISTER_METHOD(M) \
  static const ::attnbench::MethodRegistration<M> attnbench_method_registration_##M {}

// Registers DeviceImpl class I as method NAME's implementation on CUDA devices.
#define ATTNBENCH_REGISTER_CUDA_IMPL(NAME, I) \
  static const ::attnbench::DeviceImplRegistration<I> attnbench_cuda_impl_registration_##I{NAME, \
                                                                                          ::attnbench::Device::Kind::cuda}
