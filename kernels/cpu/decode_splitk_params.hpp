// decode_splitk's parameter refusals, the same on every backend (kernels/cpu/decode_splitk.cpp and
// kernels/cuda/decode_splitk.cu): a query count above max_queries is prefill, and every split needs a key.
#pragma once
#include <cstdint>
#include <string>

#include "attnbench/method.hpp"

namespace attnbench::kernels {

inline Support decode_splitk_params_support(const Problem& p, const Params& params) {
  const std::int64_t max_queries = params.integer("max_queries");
  if (p.q_len > max_queries)
    return Support::no("decode_splitk is for decoding a few tokens: q_len (" + std::to_string(p.q_len) +
                       ") exceeds max_queries (" + std::to_string(max_queries) +
                       "); raise max_queries or use an exact prefill method such as flash");
  const std::int64_t splits = params.integer("splits");
  if (splits > p.kv_len)
    return Support::no("splits (" + std::to_string(splits) + ") must not exceed kv_len (" + std::to_string(p.kv_len) +
                       "): every split needs at least one key");
  return Support::yes();
}

}  // namespace attnbench::kernels
