// Deterministic seeds and random numbers: the same (seed, key) gives the same stream on every machine.
#pragma once
#include <cstdint>
#include <string_view>

namespace attnbench {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A child seed from a parent seed and a name (FNV-1a over the name, mixed with splitmix64).
inline std::uint64_t derive_seed(std::uint64_t seed, std::string_view key) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
  return splitmix64(seed ^ splitmix64(h));
}

// xoshiro256** — small, fast, and specified exactly, unlike std:: distributions whose output differs
// between standard libraries. Gaussians by Box-Muller, so inputs are the same everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  double uniform();                      // [0, 1)
  double normal();                       // N(0, 1)
  std::uint64_t below(std::uint64_t n);  // uniform in [0, n)

 private:
  std::uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace attnbench
