// Input generators: tensors filled deterministically from a seed (docs/datasets.md defines each).
#pragma once
#include <cstdint>

#include "attnbench/problem.hpp"
#include "attnbench/tensor.hpp"

namespace attnbench::datasets {

// I.i.d. N(0, sigma²) entries, rounded to the tensor's dtype. The same (seed) gives the same values on
// every machine and for every thread count.
void fill_gaussian(Tensor& t, std::uint64_t seed, double sigma = 1.0);

// Q, K, V for a problem, each N(0, 1), from child seeds "q", "k", "v" of `seed`.
Inputs gaussian_inputs(const Problem& p, std::uint64_t seed);

}  // namespace attnbench::datasets
