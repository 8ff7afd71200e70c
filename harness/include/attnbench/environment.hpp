// What a run records about the machine and the build, so a number can be traced to where it came from.
#pragma once
#include <cstdint>

#include "attnbench/params.hpp"

namespace attnbench {

// CPU model, cores, OS, compiler and flags, build type, git revision, library versions, OpenMP
// settings, hostname, time; `seed` and `threads` as the run uses them.
json collect_environment(std::uint64_t seed, int threads);

}  // namespace attnbench
