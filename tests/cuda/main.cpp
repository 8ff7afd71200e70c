// The CUDA tests' entry point: without a driver or a device, say why and exit 77 (CTest: skipped).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <iostream>
#include <string>

#include "attnbench/backend.hpp"

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing |= std::string(argv[i]).rfind("--list", 0) == 0;
  if (!listing) {
    std::string why;
    attnbench::DeviceBackend* b = attnbench::device_backend(attnbench::Device::Kind::cuda);
    if (!b) why = "this build has no CUDA backend";
    if (b && b->device_count(&why) == 0 && why.empty()) why = "no CUDA device";
    if (!why.empty()) {
      std::cout << "SKIPPED: CUDA method tests need a GPU: " << why << "\n";
      return 77;
    }
  }
  return Catch::Session().run(argc, argv);
}
