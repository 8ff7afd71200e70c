// The CPU warp emulator's semantics of ldmatrix and mma.sync (tests/support/warp_emulator.cpp), on which
// the emulated kernel tests (tests/kernels/cuda_emulated/) rest, against the device, register by register:
// the same operands, the same addresses, small integers so that every product and sum is exact in fp32.
// Passing here turns the emulated tests' verdicts on the kernels' indexing into the device's.
#include <catch2/catch.hpp>
#include <random>

#include "attnbench/dtype.hpp"
#include "emulator_calibration.hpp"

using namespace attnbench;

TEST_CASE("the warp emulator's ldmatrix and mma.sync give the device's registers", "[cuda][emulator]") {
  const bool bf16 = GENERATE(false, true);
  INFO((bf16 ? "bf16" : "fp16"));
  auto narrow = [bf16](float x) { return bf16 ? float_to_bf16(x) : float_to_fp16(x); };
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> small(-4, 4);
  std::uint16_t a[16][16], b[16][8];
  for (auto& row : a)
    for (auto& x : row) x = narrow(static_cast<float>(small(rng)));
  for (auto& row : b)
    for (auto& x : row) x = narrow(static_cast<float>(small(rng)) * 0.5f);
  const testing::WarpRegisters device = testing::warp_registers_on_device(a, b, bf16);

  const testing::WarpRegisters emulated =
      testing::warp_registers_emulated(a, b, bf16 ? emu::MmaType::bf16 : emu::MmaType::f16);
  for (int lane = 0; lane < 32; ++lane)
    for (int e = 0; e < 4; ++e) {
      INFO("lane " << lane << " register " << e);
      CHECK(device.a[lane][e] == emulated.a[lane][e]);
      CHECK(device.b[lane][e] == emulated.b[lane][e]);
      CHECK(device.d[lane][e] == emulated.d[lane][e]);
    }
}
