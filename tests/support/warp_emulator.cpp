// The CPU warp emulator (see warp_emulator.hpp). One OS thread runs every CUDA thread of a block as a
// fiber; a fiber runs until it must wait (a barrier, a warp collective) and then yields to the scheduler,
// which resumes the fibers round-robin and reports a deadlock when a whole round makes no progress.
// Fragment layouts are those of the PTX ISA, "Matrix fragments for mma.m16n8k16 with floating point
// type" and "ldmatrix": with g = lane / 4 and t = lane % 4,
//   A (16x16, 4 registers): {A[g][2t..2t+1]}, {A[g+8][2t..2t+1]}, {A[g][2t+8..2t+9]}, {A[g+8][2t+8..2t+9]}
//   B (16x8, 2 registers):  {B[2t][g], B[2t+1][g]}, {B[2t+8][g], B[2t+9][g]}
//   C, D (16x8, 4 floats):  C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]
//   ldmatrix x4: lanes 8i..8i+7 address the rows of matrix i; register i of a lane holds row g, columns
//   2t and 2t+1 of matrix i (.trans: rows 2t and 2t+1 of column g); the lower half is the first element.
#include "support/warp_emulator.hpp"

#include <ucontext.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <utility>

#include "attnbench/dtype.hpp"

namespace attnbench::emu {
namespace {

constexpr std::size_t kStackBytes = 256 * 1024;
constexpr std::size_t kStaticSharedBytes = 48 * 1024;
constexpr std::size_t kArenaAlign = 128;

struct Pending {
  unsigned char* dst = nullptr;
  unsigned char data[16] = {};
  std::int64_t group = 0;
};

struct Fiber {
  ucontext_t ctx{};
  char* stack = nullptr;  // kStackBytes, owned by the launch's stack pool
  unsigned tid = 0;
  bool done = false;
  std::exception_ptr error;
  std::vector<Pending> pending;
  std::int64_t committed = 0;  // cp.async groups committed so far; uncommitted copies carry this number
  const char* waiting = nullptr;
  // What the fiber waits for: *until_changed to differ from `from` (a barrier's or a warp's generation).
  const std::int64_t* until_changed = nullptr;
  std::int64_t from = 0;
};

// The operands of one warp collective in flight: each lane's input and output, and the function that
// computes all outputs once the 32 inputs are there.
using Compute = void (*)(const std::array<const void*, 32>&, const std::array<void*, 32>&);
struct Warp {
  int arrived = 0;
  std::int64_t generation = 0;
  const char* what = nullptr;
  Compute compute = nullptr;
  std::array<const void*, 32> in{};
  std::array<void*, 32> out{};
};

struct ArenaDelete {
  void operator()(unsigned char* p) const { ::operator delete[](p, std::align_val_t(kArenaAlign)); }
};

struct Machine {
  const std::function<void()>* body = nullptr;
  LaunchOptions options;
  LaunchStats stats;
  Dim3 block, grid, block_dim;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  ucontext_t scheduler{};
  Fiber* current = nullptr;
  unsigned live = 0;
  unsigned barrier_arrived = 0;
  std::int64_t barrier_generation = 0;
  std::int64_t progress = 0;
  std::unique_ptr<unsigned char[], ArenaDelete> arena;
  std::size_t dynamic_bytes = 0, static_used = 0;
  std::map<std::pair<const char*, int>, std::size_t> statics;
};

thread_local Machine* g_machine = nullptr;

Machine& machine() {
  if (!g_machine) throw EmulationError("warp emulator: a device function was called outside emu::launch");
  return *g_machine;
}
Fiber& self() { return *machine().current; }

std::string where() {
  const Machine& m = machine();
  std::ostringstream s;
  s << "block (" << m.block.x << "," << m.block.y << "," << m.block.z << ") thread " << m.current->tid;
  return s.str();
}

[[noreturn]] void fail(const std::string& what) { throw EmulationError("warp emulator, " + where() + ": " + what); }

// Suspends the current fiber until *generation differs from `from`; the scheduler does not resume it
// before.
void wait_for_change(const char* waiting_for, const std::int64_t* generation, std::int64_t from) {
  Machine& m = machine();
  Fiber& f = *m.current;
  f.waiting = waiting_for;
  f.until_changed = generation;
  f.from = from;
  while (*generation == from) swapcontext(&f.ctx, &m.scheduler);
  f.waiting = nullptr;
  f.until_changed = nullptr;
}

void fiber_main() {
  Machine& m = *g_machine;
  Fiber& f = *m.current;
  try {
    (*m.body)();
    if (!f.pending.empty())
      fail("exited with " + std::to_string(f.pending.size()) + " cp.async copies never waited for");
  } catch (...) {
    f.error = std::current_exception();
  }
  f.done = true;
}  // returns to the scheduler through uc_link

void release_barrier(Machine& m) {
  m.barrier_arrived = 0;
  ++m.barrier_generation;
  ++m.stats.barriers;
  ++m.progress;
}

// All 32 lanes of the caller's warp hand in `in` and wait; the last to arrive computes every lane's `out`.
void collective(const char* what, Compute compute, const void* in, void* out) {
  Machine& m = machine();
  Fiber& f = *m.current;
  Warp& w = m.warps[f.tid / 32];
  const unsigned lane = f.tid % 32;
  if (w.arrived > 0 && std::strcmp(w.what, what) != 0)
    fail(std::string("reached ") + what + " while other lanes of its warp wait at " + w.what +
         " (divergent warp collective)");
  w.what = what;
  w.compute = compute;
  w.in[lane] = in;
  w.out[lane] = out;
  ++m.progress;
  if (++w.arrived == 32) {
    w.arrived = 0;
    w.compute(w.in, w.out);
    ++w.generation;
    ++m.stats.warp_collectives;
    return;
  }
  wait_for_change(what, &w.generation, w.generation);
}

void require_full_mask(unsigned mask, const char* what) {
  if (mask != 0xffffffffu)
    fail(std::string(what) + " with a partial lane mask: the emulator supports full-warp collectives only");
}

bool in_shared(const void* p, std::size_t bytes) {
  const Machine& m = machine();
  const auto* c = static_cast<const unsigned char*>(p);
  const unsigned char* base = m.arena.get();
  const bool dynamic = c >= base && c + bytes <= base + m.dynamic_bytes;
  const unsigned char* statics = base + m.dynamic_bytes;
  const bool fixed = c >= statics && c + bytes <= statics + m.static_used;
  return dynamic || fixed;
}

void require_shared16(const void* p, const char* what) {
  if (!in_shared(p, 16)) fail(std::string(what) + ": address outside the block's shared memory");
  if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) fail(std::string(what) + ": address not 16-byte aligned");
}

void land(Pending& p) { std::memcpy(p.dst, p.data, 16); }

// --- the collectives' computations -------------------------------------------------------------------

struct ShflIn {
  std::uint32_t value;
  int lane;  // the xor mask or the source lane
};

void compute_shfl_xor(const std::array<const void*, 32>& in, const std::array<void*, 32>& out) {
  const int lane_mask = static_cast<const ShflIn*>(in[0])->lane;
  for (int l = 0; l < 32; ++l)
    if (static_cast<const ShflIn*>(in[l])->lane != lane_mask)
      throw EmulationError("warp emulator: __shfl_xor_sync with different lane masks across the warp");
  for (int l = 0; l < 32; ++l)
    *static_cast<std::uint32_t*>(out[l]) = static_cast<const ShflIn*>(in[(l ^ lane_mask) & 31])->value;
}

void compute_shfl(const std::array<const void*, 32>& in, const std::array<void*, 32>& out) {
  for (int l = 0; l < 32; ++l) {
    const int src = static_cast<const ShflIn*>(in[l])->lane & 31;
    *static_cast<std::uint32_t*>(out[l]) = static_cast<const ShflIn*>(in[src])->value;
  }
}

struct MmaIn {
  MmaType type;
  unsigned a[4];
  unsigned b[2];
  float c[4];
};

void compute_mma(const std::array<const void*, 32>& in, const std::array<void*, 32>& out) {
  const MmaType type = static_cast<const MmaIn*>(in[0])->type;
  auto widen = [type](unsigned bits) {
    const auto h = static_cast<std::uint16_t>(bits);
    return type == MmaType::f16 ? fp16_to_float(h) : bf16_to_float(h);
  };
  double a[16][16], b[16][8], c[16][8];
  for (int l = 0; l < 32; ++l) {
    const MmaIn& x = *static_cast<const MmaIn*>(in[l]);
    if (x.type != type) throw EmulationError("warp emulator: mma.sync with different element types across the warp");
    const int g = l / 4, t = l % 4;
    for (int half = 0; half < 2; ++half) {
      const int col = 2 * t + half, shift = 16 * half;
      a[g][col] = widen(x.a[0] >> shift);
      a[g + 8][col] = widen(x.a[1] >> shift);
      a[g][col + 8] = widen(x.a[2] >> shift);
      a[g + 8][col + 8] = widen(x.a[3] >> shift);
      b[col][g] = widen(x.b[0] >> shift);
      b[col + 8][g] = widen(x.b[1] >> shift);
      c[g][col] = x.c[half];
      c[g + 8][col] = x.c[2 + half];
    }
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    float* d = static_cast<float*>(out[l]);
    for (int e = 0; e < 4; ++e) {
      const int row = g + 8 * (e / 2), col = 2 * t + e % 2;
      double acc = c[row][col];
      for (int k = 0; k < 16; ++k) acc += a[row][k] * b[k][col];
      d[e] = static_cast<float>(acc);
    }
  }
}

struct LdmatrixIn {
  const unsigned char* row;
  bool trans;
};

void compute_ldmatrix(const std::array<const void*, 32>& in, const std::array<void*, 32>& out) {
  const bool trans = static_cast<const LdmatrixIn*>(in[0])->trans;
  std::uint16_t m[4][8][8];
  for (int l = 0; l < 32; ++l) {
    const LdmatrixIn& x = *static_cast<const LdmatrixIn*>(in[l]);
    if (x.trans != trans) throw EmulationError("warp emulator: ldmatrix with and without .trans in one warp");
    std::memcpy(m[l / 8][l % 8], x.row, 16);
  }
  // Bank conflicts, matrix by matrix: the distinct 4-byte words each bank must deliver.
  for (int i = 0; i < 4; ++i) {
    std::map<int, std::vector<std::uintptr_t>> words_of_bank;
    for (int r = 0; r < 8; ++r) {
      const auto base = reinterpret_cast<std::uintptr_t>(static_cast<const LdmatrixIn*>(in[8 * i + r])->row);
      for (std::uintptr_t w = base / 4; w < base / 4 + 4; ++w) {
        auto& words = words_of_bank[static_cast<int>(w % 32)];
        if (std::find(words.begin(), words.end(), w) == words.end()) words.push_back(w);
      }
    }
    std::size_t wavefronts = 1;
    for (const auto& [bank, words] : words_of_bank) wavefronts = std::max(wavefronts, words.size());
    machine().stats.ldmatrix_bank_conflicts += static_cast<std::int64_t>(wavefronts) - 1;
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    unsigned* r = static_cast<unsigned*>(out[l]);
    for (int i = 0; i < 4; ++i) {
      const std::uint16_t lo = trans ? m[i][2 * t][g] : m[i][g][2 * t];
      const std::uint16_t hi = trans ? m[i][2 * t + 1][g] : m[i][g][2 * t + 1];
      r[i] = static_cast<unsigned>(lo) | (static_cast<unsigned>(hi) << 16);
    }
  }
}

void run_block(Machine& m, unsigned threads) {
  std::memset(m.arena.get(), 0xff, m.dynamic_bytes + kStaticSharedBytes);
  m.statics.clear();
  m.static_used = 0;
  m.barrier_arrived = 0;
  m.warps.assign(threads / 32, Warp{});
  for (unsigned i = 0; i < threads; ++i) {
    Fiber& f = m.fibers[i];
    f.tid = i;
    f.done = false;
    f.error = nullptr;
    f.pending.clear();
    f.committed = 0;
    f.waiting = nullptr;
    f.until_changed = nullptr;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = &m.scheduler;
    makecontext(&f.ctx, fiber_main, 0);
  }
  m.live = threads;
  const unsigned warps = threads / 32;
  // Resumes fiber i once; false when it had finished already.
  auto resume = [&](unsigned i) {
    Fiber& f = m.fibers[i];
    if (f.done) return false;
    if (f.until_changed && *f.until_changed == f.from) return true;  // still waiting: no need to switch
    m.current = &f;
    swapcontext(&m.scheduler, &f.ctx);
    if (f.done) {
      --m.live;
      ++m.progress;
      if (f.error) std::rethrow_exception(f.error);
      // Threads that have exited no longer count at a barrier.
      if (m.barrier_arrived > 0 && m.barrier_arrived == m.live) release_barrier(m);
    }
    return true;
  };
  while (m.live > 0) {
    const std::int64_t before = m.progress;
    if (m.options.schedule == Schedule::round_robin) {
      for (unsigned i = 0; i < threads; ++i) resume(i);
    } else {
      for (unsigned k = 0; k < warps; ++k) {
        const unsigned w = m.options.schedule == Schedule::warp_by_warp ? k : warps - 1 - k;
        // This warp's lanes, round after round, until none of them gets further.
        for (std::int64_t seen = -1; seen != m.progress;) {
          seen = m.progress;
          for (unsigned lane = 0; lane < 32; ++lane) resume(w * 32 + lane);
        }
      }
    }
    if (m.progress == before) {
      std::map<std::string, int> by_reason;
      for (unsigned i = 0; i < threads; ++i)
        if (!m.fibers[i].done) ++by_reason[m.fibers[i].waiting ? m.fibers[i].waiting : "?"];
      std::ostringstream s;
      s << "warp emulator, block (" << m.block.x << "," << m.block.y << "," << m.block.z << "): deadlock, ";
      const char* sep = "";
      for (const auto& [reason, n] : by_reason) {
        s << sep << n << " threads wait at " << reason;
        sep = ", ";
      }
      s << " (a barrier or warp collective not every thread reaches)";
      throw EmulationError(s.str());
    }
  }
  m.current = nullptr;
}

}  // namespace

LaunchStats launch(Dim3 grid, Dim3 block, std::size_t dynamic_smem, const std::function<void()>& body,
                   const LaunchOptions& options) {
  if (g_machine) throw EmulationError("warp emulator: emu::launch called from inside a launch");
  const unsigned threads = block.x * block.y * block.z;
  if (threads == 0 || threads % 32 != 0 || threads > 1024)
    throw EmulationError("warp emulator: threads per block must be a multiple of 32 up to 1024, not " +
                         std::to_string(threads));
  Machine m;
  m.body = &body;
  m.options = options;
  m.grid = grid;
  m.block_dim = block;
  m.dynamic_bytes = (dynamic_smem + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
  m.arena.reset(static_cast<unsigned char*>(
      ::operator new[](m.dynamic_bytes + kStaticSharedBytes, std::align_val_t(kArenaAlign))));
  m.fibers.resize(threads);
  // Fiber stacks are kept for the next launch on this OS thread: fresh ones cost page faults.
  thread_local std::vector<std::unique_ptr<char[]>> stacks;
  while (stacks.size() < threads) stacks.emplace_back(new char[kStackBytes]);
  for (unsigned i = 0; i < threads; ++i) m.fibers[i].stack = stacks[i].get();
  struct Current {
    explicit Current(Machine* m) { g_machine = m; }
    ~Current() { g_machine = nullptr; }
  } current(&m);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        m.block = {x, y, z};
        run_block(m, threads);
        ++m.stats.blocks;
      }
  return m.stats;
}

Dim3 thread_index() {
  const unsigned t = self().tid;
  const Dim3& b = machine().block_dim;
  return {t % b.x, t / b.x % b.y, t / (b.x * b.y)};
}
Dim3 block_index() { return machine().block; }
Dim3 block_dim() { return machine().block_dim; }
Dim3 grid_dim() { return machine().grid; }

void sync_threads() {
  Machine& m = machine();
  const std::int64_t generation = m.barrier_generation;
  ++m.progress;
  if (++m.barrier_arrived == m.live) {
    release_barrier(m);
    return;
  }
  wait_for_change("__syncthreads", &m.barrier_generation, generation);
}

unsigned char* dynamic_shared() { return machine().arena.get(); }

void* static_shared(const char* file, int line, std::size_t bytes) {
  Machine& m = machine();
  const auto key = std::make_pair(file, line);
  auto it = m.statics.find(key);
  if (it == m.statics.end()) {
    const std::size_t offset = (m.static_used + 15) / 16 * 16;
    if (offset + bytes > kStaticSharedBytes) fail("static shared memory beyond the emulator's 48 KiB");
    m.static_used = offset + bytes;
    it = m.statics.emplace(key, offset).first;
  }
  return m.arena.get() + m.dynamic_bytes + it->second;
}

void sync_warp(unsigned mask) {
  require_full_mask(mask, "__syncwarp");
  const char in = 0;
  char out = 0;
  collective(
      "__syncwarp", [](const std::array<const void*, 32>&, const std::array<void*, 32>&) {}, &in, &out);
}

namespace {
std::uint32_t shuffle(const char* what, Compute compute, unsigned mask, std::uint32_t value, int lane) {
  require_full_mask(mask, what);
  const ShflIn in{value, lane};
  std::uint32_t out = 0;
  collective(what, compute, &in, &out);
  return out;
}
}  // namespace

std::uint32_t shfl_xor(unsigned mask, std::uint32_t value, int lane_mask) {
  return shuffle("__shfl_xor_sync", compute_shfl_xor, mask, value, lane_mask);
}

std::uint32_t shfl(unsigned mask, std::uint32_t value, int src_lane) {
  return shuffle("__shfl_sync", compute_shfl, mask, value, src_lane);
}

void mma_m16n8k16(MmaType type, float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  const MmaIn in{type, {a[0], a[1], a[2], a[3]}, {b0, b1}, {c[0], c[1], c[2], c[3]}};
  float d[4];
  collective("mma.sync.m16n8k16", compute_mma, &in, d);
  for (int e = 0; e < 4; ++e) c[e] = d[e];
}

void ldmatrix_x4(unsigned (&r)[4], const void* row, bool trans) {
  require_shared16(row, "ldmatrix");
  const LdmatrixIn in{static_cast<const unsigned char*>(row), trans};
  unsigned out[4];
  collective(trans ? "ldmatrix.trans" : "ldmatrix", compute_ldmatrix, &in, out);
  for (int i = 0; i < 4; ++i) r[i] = out[i];
}

void cp_async16(void* dst, const void* src, bool valid) {
  Machine& m = machine();
  Fiber& f = *m.current;
  require_shared16(dst, "cp.async destination");
  Pending p;
  p.dst = static_cast<unsigned char*>(dst);
  p.group = f.committed;
  if (valid) {
    if (reinterpret_cast<std::uintptr_t>(src) % 16 != 0) fail("cp.async source not 16-byte aligned");
    check_global(src, 16, "cp.async source");
    std::memcpy(p.data, src, 16);
  }
  ++m.stats.async_copies;
  if (m.options.copies == CopyLanding::at_issue)
    land(p);
  else
    f.pending.push_back(p);
}

void cp_async_commit() { ++self().committed; }

void cp_async_wait(int pending_groups) {
  Fiber& f = self();
  // Every committed group but the newest `pending_groups` completes; copies not yet committed stay.
  const std::int64_t complete_below = f.committed - pending_groups;
  auto keep = std::stable_partition(f.pending.begin(), f.pending.end(),
                                    [&](const Pending& p) { return p.group >= complete_below; });
  for (auto it = keep; it != f.pending.end(); ++it) land(*it);
  f.pending.erase(keep, f.pending.end());
}

void check_global(const void* p, std::size_t bytes, const char* what) {
  const Machine& m = machine();
  if (m.options.global.empty()) return;
  const auto* c = static_cast<const unsigned char*>(p);
  for (const GlobalRange& r : m.options.global) {
    const auto* b = static_cast<const unsigned char*>(r.begin);
    if (c >= b && c + bytes <= b + r.bytes) return;
  }
  fail(std::string(what) + ": " + std::to_string(bytes) + " bytes outside every buffer of the launch");
}

}  // namespace attnbench::emu
