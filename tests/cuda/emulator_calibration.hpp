// The warp-level instructions of the tensor-core kernel (kernels/cuda/mma_primitives.cuh) run once on
// the device with fixed operands, every lane's registers returned: the CPU warp emulator's reading of the
// PTX ISA (tests/support/warp_emulator.cpp) is then compared with the silicon, register by register.
#pragma once
#include <cstdint>

#include "support/warp_registers.hpp"

namespace attnbench::testing {

// a: 16x16 row-major, b: 16x8 row-major, 16-bit elements (fp16, or bf16 when `bf16`).
WarpRegisters warp_registers_on_device(const std::uint16_t (&a)[16][16], const std::uint16_t (&b)[16][8], bool bf16);

}  // namespace attnbench::testing
