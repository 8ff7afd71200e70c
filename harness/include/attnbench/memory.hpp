// Peak heap memory, measured: the harness replaces global operator new/delete to count live bytes.
#pragma once
#include <cstdint>

namespace attnbench::memory {

std::int64_t live_bytes();
// Starts a new peak window at the current live bytes; peak_bytes() is the high-water mark above it.
void reset_peak();
std::int64_t peak_bytes();

}  // namespace attnbench::memory
