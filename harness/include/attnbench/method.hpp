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

class Plan {
 public:
  virtual ~Plan() = default;
  // Computes `out` from `in`. Must write every element of `out`; the harness poisons it first.
  virtual void run(const Inputs& in, Tensor& out) = 0;
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
};

class MethodRegistry {
 public:
  static MethodRegistry& instance();
  void add(std::unique_ptr<Method> m);  // throws on a duplicate name
  const Method* find(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted

 private:
  std::map<std::string, std::unique_ptr<Method>> methods_;
  std::map<std::string, MethodInfo> infos_;
};

template <class M>
struct MethodRegistration {
  MethodRegistration() { MethodRegistry::instance().add(std::make_unique<M>()); }
};

}  // namespace attnbench

// Registers method class M when the object file is linked: one line at the bottom of its source file.
#define ATTNBENCH_REGISTER_METHOD(M) \
  static const ::attnbench::MethodRegistration<M> attnbench_method_registration_##M {}
