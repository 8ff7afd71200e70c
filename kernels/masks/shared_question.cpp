// Mask "shared_question": one question followed by several answers packed in a sequence (reward-model
// and preference training, FlashMask's "shared question"): causal, every token sees the question, and an
// answer sees only itself besides it.
#include <memory>
#include <stdexcept>
#include <string>

#include "kernels/masks/patterns.hpp"

namespace attnbench::masks {
namespace {

std::vector<ParamSpec> shared_question_params() {
  return {
      ParamSpec::integer("question", 256, 1, std::int64_t{1} << 24, "tokens of the shared question prefix"),
      ParamSpec::integer("answers", 4, 1, std::int64_t{1} << 20,
                         "answers after the question, splitting the rest evenly (the first ones one token longer)")};
}

// The segments as document lengths: the question, then the answers.
std::string segment_lengths(const Params& p, std::int64_t k_len) {
  const std::int64_t question = p.integer("question"), answers = p.integer("answers");
  const std::int64_t rest = k_len - question;
  if (rest < answers)
    throw std::invalid_argument("mask 'shared_question': " + std::to_string(k_len) + " tokens leave " +
                                std::to_string(rest < 0 ? 0 : rest) + " after a question of " +
                                std::to_string(question) + ", fewer than the " + std::to_string(answers) + " answers");
  std::string lens = std::to_string(question);
  for (std::int64_t a = 0; a < answers; ++a) {
    lens += ',';
    lens += std::to_string(rest / answers + (a < rest % answers ? 1 : 0));
  }
  return lens;
}

// Allowed when k <= pos and (k < question, or k and pos lie in the same segment): the causal document
// mask over [question, answer 1, ..., answer n], plus the question's columns for every later row.
class SharedQuestionMask final : public Mask {
 public:
  SharedQuestionMask(Params p, MaskShape s)
      : Mask("shared_question", std::move(p), s),
        question_(params().integer("question")),
        segments_(make_mask("document", json{{"doc_lens", segment_lengths(params(), s.k_len)}, {"causal", true}}, s)) {}

  bool allowed(std::int64_t b, std::int64_t h, std::int64_t q, std::int64_t k) const override {
    const std::int64_t pos = q + shape().offset();
    return pos >= 0 && k <= pos && (k < question_ || segments_->allowed(b, h, q, k));
  }

  // Keys left of the question's end follow the causal rule alone, the rest the segments': split there.
  TileState tile(std::int64_t b, std::int64_t h, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t split = std::clamp(question_, k0, k1);
    RowFold fold;
    if (split > k0) {
      const std::int64_t off = shape().offset();
      fold.add(over_positioned_rows(q0 + off, q1 - 1 + off, [&](std::int64_t p0, std::int64_t p1) {
        return band_state(p0, p1, k0, split, 0, std::int64_t{1} << 62);
      }));
    }
    if (k1 > split) fold.add(segments_->tile(b, h, q0, q1, split, k1));
    return fold.state();
  }

 private:
  std::int64_t question_;
  std::shared_ptr<const Mask> segments_;
};

const MaskRegistration registration{MaskKind{
    "shared_question", "causal; every token sees the question prefix, each answer after it sees only itself besides",
    shared_question_params(),
    [](const Params& p, const MaskShape& s) { return std::make_shared<const SharedQuestionMask>(p, s); }}};

}  // namespace
}  // namespace attnbench::masks
