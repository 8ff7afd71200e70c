// Where a method runs: the CPU, or CUDA device N; and what the machine has.
#pragma once
#include <string>

namespace attnbench {

struct Device {
  enum class Kind { cpu, cuda } kind = Kind::cpu;
  int index = 0;
  std::string to_string() const { return kind == Kind::cpu ? "cpu" : "cuda:" + std::to_string(index); }
  bool is_cpu() const { return kind == Kind::cpu; }
};

// Number of CUDA devices the driver reports, found through dlopen of libcuda (no link-time dependency).
// 0 with `why` filled in when there is no driver or no device.
int cuda_device_count(std::string* why);

// "cpu", "cuda", "cuda:N" or "auto". `note` says what auto chose and why. Throws std::invalid_argument
// (bad spelling) or std::runtime_error (cuda asked for, none present).
Device resolve_device(const std::string& spec, std::string* note);

}  // namespace attnbench
