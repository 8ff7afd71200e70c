// An out-of-tree method plugin: exact attention written plainly, built against the installed attnbench.
//
// Build it with the installed CMake package (see CMakeLists.txt beside this file), then
//   attnbench list methods --plugin ./libmy_method.so
//   attnbench run suite.json --plugin ./libmy_method.so
#include <algorithm>
#include <attnbench/method.hpp>
#include <cmath>
#include <vector>

namespace {

using namespace attnbench;

class MyPlan final : public Plan {
 public:
  explicit MyPlan(Problem p) : p_(std::move(p)), scores_(static_cast<std::size_t>(p_.kv_len)) {}

  void run(const Inputs& in, Tensor& out) override {
    const Problem& p = p_;
    for (std::int64_t b = 0; b < p.batch; ++b)
      for (std::int64_t h = 0; h < p.heads; ++h)
        for (std::int64_t q = 0; q < p.q_len; ++q) {
          const std::int64_t qi = ((b * p.heads + h) * p.q_len + q) * p.head_dim;
          const std::int64_t kvh = p.kv_head_of(h);
          float best = -INFINITY;
          for (std::int64_t k = 0; k < p.kv_len; ++k) {
            if (!p.mask->allowed(b, h, q, k)) {
              scores_[k] = -INFINITY;
              continue;
            }
            const std::int64_t ki = ((b * p.kv_heads + kvh) * p.kv_len + k) * p.head_dim;
            float dot = 0;
            for (std::int64_t d = 0; d < p.head_dim; ++d)
              dot += static_cast<float>(in.q.get(qi + d) * in.k.get(ki + d));
            scores_[k] = dot * static_cast<float>(p.scale);
            best = std::max(best, scores_[k]);
          }
          float sum = 0;
          for (auto& s : scores_) sum += (s = std::isinf(s) ? 0.0f : std::exp(s - best));
          const std::int64_t oi = ((b * p.heads + h) * p.q_len + q) * p.value_dim;
          for (std::int64_t c = 0; c < p.value_dim; ++c) {
            double acc = 0;
            for (std::int64_t k = 0; k < p.kv_len; ++k)
              acc += scores_[k] * in.v.get(((b * p.kv_heads + kvh) * p.kv_len + k) * p.value_dim + c);
            out.set(oi + c, sum > 0 ? acc / sum : 0.0);
          }
        }
  }

 private:
  Problem p_;
  std::vector<float> scores_;
};

class MyMethod final : public Method {
 public:
  MethodInfo info() const override {
    MethodInfo mi;
    mi.name = "my_method";
    mi.family = Family::exact;
    mi.summary = "example out-of-tree plugin: exact attention in plain loops";
    mi.reference = "kernels/examples/my_method (attnbench documentation)";
    return mi;
  }
  std::unique_ptr<Plan> plan(const Problem& p, const Params&, const Device&) const override {
    return std::make_unique<MyPlan>(p);
  }
};

ATTNBENCH_REGISTER_METHOD(MyMethod);

}  // namespace
