// The `gaussian` input generator: i.i.d. normal entries, deterministic in the seed.
#include <algorithm>

#include "attnbench/rng.hpp"
#include "datasets/generators.hpp"

namespace attnbench::datasets {

void fill_gaussian(Tensor& t, std::uint64_t seed, double sigma) {
  // One stream per chunk of 4096 elements, so filling is parallel and still thread-count independent.
  const std::int64_t n = t.numel(), chunk = 4096;
  const std::int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < chunks; ++c) {
    Rng rng(derive_seed(seed, "chunk" + std::to_string(c)));
    const std::int64_t end = std::min(n, (c + 1) * chunk);
    for (std::int64_t i = c * chunk; i < end; ++i) t.set(i, sigma * rng.normal());
  }
}

Inputs gaussian_inputs(const Problem& p, std::uint64_t seed) {
  Inputs in{Tensor(p.dtype, {p.batch, p.heads, p.q_len, p.head_dim}),
            Tensor(p.dtype, {p.batch, p.kv_heads, p.kv_len, p.head_dim}),
            Tensor(p.dtype, {p.batch, p.kv_heads, p.kv_len, p.value_dim})};
  fill_gaussian(in.q, derive_seed(seed, "q"));
  fill_gaussian(in.k, derive_seed(seed, "k"));
  fill_gaussian(in.v, derive_seed(seed, "v"));
  return in;
}

}  // namespace attnbench::datasets
