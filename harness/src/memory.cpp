// Replaces global operator new/delete to count live heap bytes, so each cell's peak memory is measured.
#include "attnbench/memory.hpp"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::int64_t> g_live{0};
std::atomic<std::int64_t> g_peak{0};
std::atomic<std::int64_t> g_base{0};

void note_alloc(void* p) {
  if (!p) return;
  const auto n = static_cast<std::int64_t>(malloc_usable_size(p));
  const std::int64_t now = g_live.fetch_add(n, std::memory_order_relaxed) + n;
  std::int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}
void note_free(void* p) {
  if (p) g_live.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
}
void* checked(void* p) {
  if (!p) throw std::bad_alloc();
  note_alloc(p);
  return p;
}
void* aligned(std::size_t n, std::align_val_t a) {
  const auto al = static_cast<std::size_t>(a);
  const std::size_t rounded = (n + al - 1) / al * al;
  return std::aligned_alloc(al, rounded == 0 ? al : rounded);
}
}  // namespace

namespace attnbench::memory {
std::int64_t live_bytes() { return g_live.load(); }
void reset_peak() {
  const std::int64_t now = g_live.load();
  g_base.store(now);
  g_peak.store(now);
}
std::int64_t peak_bytes() { return g_peak.load() - g_base.load(); }
}  // namespace attnbench::memory

void* operator new(std::size_t n) { return checked(std::malloc(n ? n : 1)); }
void* operator new[](std::size_t n) { return checked(std::malloc(n ? n : 1)); }
void* operator new(std::size_t n, std::align_val_t a) { return checked(aligned(n, a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return checked(aligned(n, a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  void* p = std::malloc(n ? n : 1);
  note_alloc(p);
  return p;
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  void* p = std::malloc(n ? n : 1);
  note_alloc(p);
  return p;
}
void operator delete(void* p) noexcept {
  note_free(p);
  std::free(p);
}
void operator delete[](void* p) noexcept {
  note_free(p);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  note_free(p);
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  note_free(p);
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  note_free(p);
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  note_free(p);
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  note_free(p);
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  note_free(p);
  std::free(p);
}
