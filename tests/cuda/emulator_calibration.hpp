// The warp-level instructions of the tensor-core kernel (kernels/cuda/mma_primitives.cuh) run once on
// the device with fixed operands, every lane's registers returned: the CPU warp emulator's reading of the
// PTX ISA (tests/support/warp_emulator.cpp) is then compared with the silicon, register by register.
#pragma once
#include <cstdint>

namespace attnbench::testing {

struct WarpRegisters {
  unsigned a[32][4];  // ldmatrix.x4 of a row-major 16x16 tile (the mma A operand)
  unsigned b[32][4];  // ldmatrix.x4.trans of a row-major 16x8 tile, twice (the mma B operand)
  float d[32][4];     // mma.sync m16n8k16 of those, onto C = {0.5, -0.5, 0.25, 1} in every lane
};

// a: 16x16 row-major, b: 16x8 row-major, 16-bit elements (fp16, or bf16 when `bf16`).
WarpRegisters warp_registers_on_device(const std::uint16_t (&a)[16][16], const std::uint16_t (&b)[16][8], bool bf16);

}  // namespace attnbench::testing
