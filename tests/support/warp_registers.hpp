// One warp's ldmatrix and mma.sync m16n8k16 on fixed operands, every lane's registers: the sequence the
// tensor-core kernel uses (A row-major by ldmatrix.x4, B row-major by ldmatrix.x4.trans, then mma onto
// C). The emulator's test checks the emulated result against a plain product; the CUDA tests compare it,
// register by register, with the same sequence on the device (tests/cuda/emulator_calibration.*).
#pragma once
#include <cstdint>
#include <cstring>

#include "support/warp_emulator.hpp"

namespace attnbench::testing {

struct WarpRegisters {
  unsigned a[32][4];  // ldmatrix.x4 of a row-major 16x16 tile (the mma A operand)
  unsigned b[32][4];  // ldmatrix.x4.trans of a row-major 16x8 tile, twice (the mma B operand)
  float d[32][4];     // mma.sync m16n8k16 of those onto C = kWarpRegistersC in every lane
};

// C's four accumulators in every lane before the mma: D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1].
inline constexpr float kWarpRegistersC[4] = {0.5f, -0.5f, 0.25f, 1.0f};

// The sequence on the CPU warp emulator; a: 16x16 and b: 16x8 row-major, 16-bit elements of `type`.
inline WarpRegisters warp_registers_emulated(const std::uint16_t (&a)[16][16], const std::uint16_t (&b)[16][8],
                                             emu::MmaType type) {
  WarpRegisters out{};
  emu::launch({1, 1, 1}, 32, sizeof(a) + sizeof(b), [&] {
    auto* sa = reinterpret_cast<std::uint16_t*>(emu::dynamic_shared());
    std::uint16_t* sb = sa + 16 * 16;
    const unsigned lane = emu::thread_index().x;
    if (lane == 0) {
      std::memcpy(sa, a, sizeof(a));
      std::memcpy(sb, b, sizeof(b));
    }
    emu::sync_warp(0xffffffffu);
    // A: matrices (rows 0-7, cols 0-7), (rows 8-15, cols 0-7), (rows 0-7, cols 8-15), (rows 8-15, cols 8-15).
    emu::ldmatrix_x4(out.a[lane], sa + (lane % 16) * 16 + (lane / 16) * 8, false);
    // B transposed: matrices of k rows 0-7 and 8-15, twice.
    emu::ldmatrix_x4(out.b[lane], sb + (lane % 16) * 8, true);
    float c[4] = {kWarpRegistersC[0], kWarpRegistersC[1], kWarpRegistersC[2], kWarpRegistersC[3]};
    emu::mma_m16n8k16(type, c, out.a[lane], out.b[lane][0], out.b[lane][1]);
    for (int e = 0; e < 4; ++e) out.d[lane][e] = c[e];
  });
  return out;
}

}  // namespace attnbench::testing
