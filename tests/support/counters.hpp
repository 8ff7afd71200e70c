// Test helper: the value of a plan's counter (Plan::counters()), failing the test when it is missing.
#pragma once
#include <catch2/catch.hpp>
#include <string>

#include "attnbench/method.hpp"

namespace attnbench::testing {

inline double counter(const Counters& c, const std::string& name) {
  for (const auto& [k, v] : c)
    if (k == name) return v;
  FAIL("counter '" << name << "' missing");
  return 0;
}

}  // namespace attnbench::testing
