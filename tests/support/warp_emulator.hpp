// A CPU emulator of the CUDA execution model, enough to run our tensor-core kernels' own source on the
// host: every thread of a block is a fiber (ucontext), blocks run one after another, __syncthreads is a
// block barrier, and the warp-level instructions (mma.sync m16n8k16, ldmatrix, shuffles) are warp
// collectives computed from all 32 lanes' operands with the fragment layouts of the PTX ISA. cp.async
// copies land either when the kernel waits for their group (the latest the ISA allows) or at issue (the
// earliest); a correct kernel gives the same bits both ways. Shared memory is poisoned (0xFF bytes: NaN in
// fp32, fp16 and bf16) at the start of each block, so a read of a tile that has not landed shows up in
// the output, and the scheduler can let one warp run ahead of the others, so a missing barrier changes
// the result. Misuse the hardware would punish silently is an EmulationError here: a barrier or
// collective some threads never reach (deadlock), lanes of one warp at different collectives, unaligned
// or out-of-range ldmatrix and cp.async addresses, cp.async copies never waited for.
//
// What it cannot show: timing, bank conflicts, register pressure, and anything the ISA leaves to the
// hardware (the order of the tensor cores' additions: the emulator sums a product in double and rounds
// once). The kernels' CUDA surface is in warp_emulator_cuda.hpp; this header is the plain C++ API.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace attnbench::emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

class EmulationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// When the data of a cp.async lands in shared memory.
enum class CopyLanding { at_wait, at_issue };

struct GlobalRange {
  const void* begin = nullptr;
  std::size_t bytes = 0;
};

// The order the scheduler resumes threads in. round_robin keeps the warps of a block in near lockstep;
// warp_by_warp runs the lowest warp as far as it can get (to the next barrier) before the next one
// starts, and reversed_warps the highest first: a warp that races ahead into shared memory another warp
// still reads, because a barrier is missing, then changes the result.
enum class Schedule { round_robin, warp_by_warp, reversed_warps };

struct LaunchOptions {
  CopyLanding copies = CopyLanding::at_wait;
  Schedule schedule = Schedule::round_robin;
  // Where non-empty: cp.async sources and __ldg reads must lie inside one of these ranges.
  std::vector<GlobalRange> global;
};

struct LaunchStats {
  std::int64_t blocks = 0, barriers = 0, warp_collectives = 0, async_copies = 0;
  // ldmatrix's shared-memory wavefronts beyond one per 8x8 matrix: 32 banks of 4 bytes, and a matrix's
  // eight 16-byte rows read in one wavefront unless two of them need different words of one bank.
  std::int64_t ldmatrix_bank_conflicts = 0;
};

// Runs `body` once per thread of every block of `grid` (block.x·block.y·block.z threads, a multiple of 32;
// warps are formed from the linear thread index, x fastest, as on the device), with `dynamic_smem` bytes
// of dynamic shared memory. Throws EmulationError (naming block and thread) on misuse; an exception
// thrown by the body is rethrown. One launch at a time per OS thread.
LaunchStats launch(Dim3 grid, Dim3 block, std::size_t dynamic_smem, const std::function<void()>& body,
                   const LaunchOptions& options = {});
inline LaunchStats launch(Dim3 grid, unsigned threads, std::size_t dynamic_smem, const std::function<void()>& body,
                          const LaunchOptions& options = {}) {
  return launch(grid, Dim3{threads, 1, 1}, dynamic_smem, body, options);
}

// Inside a running body.
Dim3 thread_index();
Dim3 block_index();
Dim3 block_dim();
Dim3 grid_dim();
void sync_threads();
// __syncwarp: every lane of the warp (full mask only) meets here.
void sync_warp(unsigned mask);
unsigned char* dynamic_shared();
// Shared storage of a `__shared__` declaration, the same for every thread of the block; keyed by where
// it is declared.
void* static_shared(const char* file, int line, std::size_t bytes);
std::uint32_t shfl_xor(unsigned mask, std::uint32_t value, int lane_mask);
std::uint32_t shfl(unsigned mask, std::uint32_t value, int src_lane);

enum class MmaType { f16, bf16 };
// D = A·B + C for one warp, m16n8k16, row-major A and column-major B, fp32 C and D.
void mma_m16n8k16(MmaType type, float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1);
// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16
void ldmatrix_x4(unsigned (&r)[4], const void* row, bool trans);
// cp.async.cg.shared.global 16 bytes (zero-filled when !valid), commit_group, wait_group N.
void cp_async16(void* dst, const void* src, bool valid);
void cp_async_commit();
void cp_async_wait(int pending_groups);
// Throws unless [p, p + bytes) lies in one of the launch's global ranges (no check when none was given).
void check_global(const void* p, std::size_t bytes, const char* what);

// 16-bit element storage for the kernels' T (they use T as storage only); in a namespace of their own
// so that argument-dependent lookup of the kernels' primitives does not also find emu's functions.
namespace types {
struct Half {
  std::uint16_t bits;
};
struct Bf16 {
  std::uint16_t bits;
};
}  // namespace types
using types::Bf16;
using types::Half;

}  // namespace attnbench::emu
