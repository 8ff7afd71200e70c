// The CPU warp emulator itself (tests/support/warp_emulator.hpp): barriers order shared memory, misuse
// the hardware would punish silently is an error here, cp.async lands late or early as asked, and
// ldmatrix and mma.sync, each written from the PTX ISA's fragment tables, compose into a plain matrix
// product the way every public tensor-core kernel uses them (row-major A by ldmatrix, B by ldmatrix.trans).
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "attnbench/dtype.hpp"
#include "support/warp_emulator.hpp"
#include "support/warp_registers.hpp"

using namespace attnbench;
using Catch::Matchers::Contains;

TEST_CASE("warp emulator: a barrier orders every thread's shared-memory writes before the reads",
          "[cuda_emulated][emulator]") {
  const unsigned threads = 128;
  std::vector<int> seen(2 * threads, -1);
  const emu::LaunchStats stats = emu::launch({2, 1, 1}, threads, threads * sizeof(int), [&] {
    int* smem = reinterpret_cast<int*>(emu::dynamic_shared());
    const unsigned t = emu::thread_index().x, b = emu::block_index().x;
    smem[t] = static_cast<int>(1000 * b + t);
    emu::sync_threads();
    seen[b * threads + t] = smem[(t + 1) % threads];
  });
  for (unsigned b = 0; b < 2; ++b)
    for (unsigned t = 0; t < threads; ++t)
      REQUIRE(seen[b * threads + t] == static_cast<int>(1000 * b + (t + 1) % threads));
  CHECK(stats.blocks == 2);
  CHECK(stats.barriers == 2);
}

TEST_CASE("warp emulator: shuffles exchange lanes' values", "[cuda_emulated][emulator]") {
  std::vector<std::uint32_t> x(64), s(64);
  emu::launch({1, 1, 1}, 64, 0, [&] {
    const unsigned t = emu::thread_index().x;
    x[t] = emu::shfl_xor(0xffffffffu, 100 + t, 3);
    s[t] = emu::shfl(0xffffffffu, 100 + t, static_cast<int>((t * 7) % 32));
  });
  for (unsigned t = 0; t < 64; ++t) {
    CHECK(x[t] == 100 + (t / 32) * 32 + ((t % 32) ^ 3));
    CHECK(s[t] == 100 + (t / 32) * 32 + (t * 7) % 32);
  }
}

TEST_CASE("warp emulator: a barrier or collective not every thread reaches is reported, not hung",
          "[cuda_emulated][emulator]") {
  SECTION("half of a warp at a barrier, the other half at a shuffle") {
    CHECK_THROWS_WITH(emu::launch({1, 1, 1}, 64, 0,
                                  [] {
                                    if (emu::thread_index().x % 2 == 0)
                                      emu::sync_threads();
                                    else
                                      emu::shfl_xor(0xffffffffu, 1u, 1);
                                  }),
                      Contains("deadlock") && Contains("__syncthreads") && Contains("__shfl_xor_sync"));
  }
  SECTION("lanes of one warp at different collectives") {
    CHECK_THROWS_WITH(emu::launch({1, 1, 1}, 32, 0,
                                  [] {
                                    if (emu::thread_index().x < 16)
                                      emu::shfl_xor(0xffffffffu, 1u, 1);
                                    else
                                      emu::shfl(0xffffffffu, 1u, 0);
                                  }),
                      Contains("divergent warp collective"));
  }
  SECTION("a partial lane mask") {
    CHECK_THROWS_WITH(emu::launch({1, 1, 1}, 32, 0, [] { emu::shfl_xor(0x0000ffffu, 1u, 1); }),
                      Contains("partial lane mask"));
  }
}

TEST_CASE("warp emulator: cp.async lands when its group is waited for, or at issue", "[cuda_emulated][emulator]") {
  alignas(16) static const std::uint32_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const emu::CopyLanding landing = GENERATE(emu::CopyLanding::at_wait, emu::CopyLanding::at_issue);
  std::uint32_t before = 0, between = 0, second_between = 0, after = 0;
  emu::LaunchOptions options;
  options.copies = landing;
  options.global = {{src, sizeof(src)}};
  emu::launch(
      {1, 1, 1}, 32, 64,
      [&] {
        auto* smem = reinterpret_cast<std::uint32_t*>(emu::dynamic_shared());
        if (emu::thread_index().x == 0) {
          emu::cp_async16(smem, src, true);
          emu::cp_async_commit();
          emu::cp_async16(smem + 4, src + 4, true);
          emu::cp_async_commit();
          before = smem[0];
          emu::cp_async_wait(1);  // the first group, not the second
          between = smem[0];
          second_between = smem[4];
          emu::cp_async_wait(0);
          after = smem[4];
        }
      },
      options);
  const bool late = landing == emu::CopyLanding::at_wait;
  CHECK(before == (late ? 0xffffffffu : 1u));  // shared memory starts poisoned
  CHECK(between == 1u);
  CHECK(second_between == (late ? 0xffffffffu : 5u));
  CHECK(after == 5u);
}

TEST_CASE("warp emulator: cp.async and ldmatrix misuse are errors", "[cuda_emulated][emulator]") {
  alignas(16) static const std::uint32_t src[8] = {};
  emu::LaunchOptions options;
  options.global = {{src, sizeof(src)}};
  SECTION("copies never waited for") {
    CHECK_THROWS_WITH(emu::launch({1, 1, 1}, 32, 64,
                                  [&] {
                                    emu::cp_async16(emu::dynamic_shared(), src, true);
                                    emu::cp_async_commit();
                                  }),
                      Contains("never waited for"));
  }
  SECTION("a source outside the launch's buffers") {
    CHECK_THROWS_WITH(emu::launch(
                          {1, 1, 1}, 32, 64,
                          [&] {
                            emu::cp_async16(emu::dynamic_shared(), src + 8, true);
                            emu::cp_async_wait(0);
                          },
                          options),
                      Contains("outside every buffer"));
  }
  SECTION("a destination outside shared memory") {
    alignas(16) std::uint32_t not_shared[4];
    CHECK_THROWS_WITH(emu::launch(
                          {1, 1, 1}, 32, 64, [&] { emu::cp_async16(not_shared, src, true); }, options),
                      Contains("outside the block's shared memory"));
  }
  SECTION("an unaligned ldmatrix row") {
    CHECK_THROWS_WITH(emu::launch({1, 1, 1}, 32, 256,
                                  [] {
                                    unsigned r[4];
                                    emu::ldmatrix_x4(r, emu::dynamic_shared() + 8, false);
                                  }),
                      Contains("not 16-byte aligned"));
  }
}

TEST_CASE("warp emulator: ldmatrix and mma.sync m16n8k16 compute a 16x16 by 16x8 product",
          "[cuda_emulated][emulator]") {
  const emu::MmaType type = GENERATE(emu::MmaType::f16, emu::MmaType::bf16);
  auto narrow = [type](float x) { return type == emu::MmaType::f16 ? float_to_fp16(x) : float_to_bf16(x); };
  auto widen = [type](std::uint16_t h) { return type == emu::MmaType::f16 ? fp16_to_float(h) : bf16_to_float(h); };
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  std::uint16_t a[16][16], b[16][8];  // row-major A (M x K) and B (K x N)
  for (auto& row : a)
    for (auto& x : row) x = narrow(normal(rng));
  for (auto& row : b)
    for (auto& x : row) x = narrow(normal(rng));
  const testing::WarpRegisters r = testing::warp_registers_emulated(a, b, type);
  float d[16][8] = {};
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    d[g][2 * t] = r.d[lane][0];
    d[g][2 * t + 1] = r.d[lane][1];
    d[g + 8][2 * t] = r.d[lane][2];
    d[g + 8][2 * t + 1] = r.d[lane][3];
  }
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double want = testing::kWarpRegistersC[(m >= 8 ? 2 : 0) + n % 2];
      for (int k = 0; k < 16; ++k) want += static_cast<double>(widen(a[m][k])) * widen(b[k][n]);
      INFO("D[" << m << "][" << n << "]");
      CHECK(d[m][n] == Approx(want).margin(1e-5));
    }
}

TEST_CASE("warp emulator: ldmatrix counts shared-memory bank conflicts", "[cuda_emulated][emulator]") {
  // Eight rows 16 bytes wide, `stride` bytes apart: 144 (rows padded by 8 halves) spreads them over all
  // 32 banks; 128 puts every row on the same four banks (8 wavefronts, 7 extra, per matrix).
  const unsigned stride = GENERATE(144u, 128u);
  const emu::LaunchStats stats = emu::launch({1, 1, 1}, 32, 32 * 144, [stride] {
    unsigned r[4];
    emu::ldmatrix_x4(r, emu::dynamic_shared() + emu::thread_index().x * stride, false);
  });
  CHECK(stats.ldmatrix_bank_conflicts == (stride == 144u ? 0 : 4 * 7));
}
