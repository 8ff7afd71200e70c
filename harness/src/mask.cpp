// Mask machinery: tile classification, block maps, exact density, the registry, and the full and causal masks.
#include "attnbench/mask.hpp"

#include <algorithm>
#include <stdexcept>

namespace attnbench {

TileState Mask::tile(std::int64_t b, std::int64_t h, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                     std::int64_t k1) const {
  bool any = false, all = true;
  for (std::int64_t q = q0; q < q1; ++q)
    for (std::int64_t k = k0; k < k1; ++k) {
      const bool a = allowed(b, h, q, k);
      any |= a;
      all &= a;
      if (any && !all) return TileState::partial;
    }
  return any ? TileState::full : TileState::empty;
}

double Mask::density() const {
  const auto& s = shape_;
  if (s.q_len == 0 || s.k_len == 0) return 0.0;
  const std::int64_t bq = 64, bk = 64;
  const std::int64_t nb = varies_with_batch_or_head() ? s.batch : 1;
  const std::int64_t nh = varies_with_batch_or_head() ? s.heads : 1;
  double allowed_pairs = 0;
  for (std::int64_t b = 0; b < nb; ++b)
    for (std::int64_t h = 0; h < nh; ++h)
      for (std::int64_t q0 = 0; q0 < s.q_len; q0 += bq)
        for (std::int64_t k0 = 0; k0 < s.k_len; k0 += bk) {
          const std::int64_t q1 = std::min(q0 + bq, s.q_len), k1 = std::min(k0 + bk, s.k_len);
          switch (tile(b, h, q0, q1, k0, k1)) {
            case TileState::empty:
              break;
            case TileState::full:
              allowed_pairs += static_cast<double>((q1 - q0) * (k1 - k0));
              break;
            case TileState::partial:
              for (std::int64_t q = q0; q < q1; ++q)
                for (std::int64_t k = k0; k < k1; ++k) allowed_pairs += allowed(b, h, q, k) ? 1 : 0;
              break;
          }
        }
  return allowed_pairs / (static_cast<double>(nb * nh) * static_cast<double>(s.q_len) * static_cast<double>(s.k_len));
}

std::int64_t BlockMap::count(TileState s) const {
  return static_cast<std::int64_t>(std::count(states.begin(), states.end(), s));
}

BlockMap lower_to_block_map(const Mask& mask, std::int64_t b, std::int64_t h, std::int64_t block_q,
                            std::int64_t block_k) {
  const auto& s = mask.shape();
  BlockMap m;
  m.block_q = block_q;
  m.block_k = block_k;
  m.q_tiles = (s.q_len + block_q - 1) / block_q;
  m.k_tiles = (s.k_len + block_k - 1) / block_k;
  m.states.resize(static_cast<std::size_t>(m.q_tiles * m.k_tiles));
  for (std::int64_t qt = 0; qt < m.q_tiles; ++qt)
    for (std::int64_t kt = 0; kt < m.k_tiles; ++kt) {
      const std::int64_t q0 = qt * block_q, k0 = kt * block_k;
      m.states[qt * m.k_tiles + kt] =
          mask.tile(b, h, q0, std::min(q0 + block_q, s.q_len), k0, std::min(k0 + block_k, s.k_len));
    }
  return m;
}

MaskRegistry& MaskRegistry::instance() {
  static MaskRegistry r;
  return r;
}
void MaskRegistry::add(MaskKind kind) {
  const std::string name = kind.name;
  if (!kinds_.emplace(name, std::move(kind)).second) throw std::logic_error("mask '" + name + "' registered twice");
}
const MaskKind* MaskRegistry::find(const std::string& name) const {
  auto it = kinds_.find(name);
  return it == kinds_.end() ? nullptr : &it->second;
}
std::vector<const MaskKind*> MaskRegistry::all() const {
  std::vector<const MaskKind*> v;
  for (const auto& [_, k] : kinds_) v.push_back(&k);
  return v;
}

std::shared_ptr<const Mask> make_mask(const std::string& name, const json& params, const MaskShape& shape) {
  const MaskKind* kind = MaskRegistry::instance().find(name);
  if (!kind) throw std::invalid_argument("unknown mask '" + name + "'");
  for (const auto& [key, value] : params.items()) {
    const ParamSpec* spec = find_spec(kind->params, key);
    if (!spec) throw std::invalid_argument("mask '" + name + "' has no parameter '" + key + "'");
    if (auto err = spec->check(value))
      throw std::invalid_argument("mask '" + name + "' parameter '" + key + "': " + *err);
  }
  return kind->make(complete_params(kind->params, params), shape);
}

namespace {

class IntersectionMask final : public Mask {
 public:
  IntersectionMask(std::shared_ptr<const Mask> a, std::shared_ptr<const Mask> b)
      : Mask(a->name() + "&" + b->name(), Params(json{{"a", a->params().values()}, {"b", b->params().values()}}),
             a->shape()),
        a_(std::move(a)),
        b_(std::move(b)) {}
  bool allowed(std::int64_t b, std::int64_t h, std::int64_t q, std::int64_t k) const override {
    return a_->allowed(b, h, q, k) && b_->allowed(b, h, q, k);
  }
  TileState tile(std::int64_t b, std::int64_t h, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const TileState x = a_->tile(b, h, q0, q1, k0, k1);
    if (x == TileState::empty) return x;
    const TileState y = b_->tile(b, h, q0, q1, k0, k1);
    if (y == TileState::empty) return y;
    if (x == TileState::full && y == TileState::full) return TileState::full;
    if (x == TileState::full) return y;
    if (y == TileState::full) return x;
    return Mask::tile(b, h, q0, q1, k0, k1);  // both partial: only the elements can tell
  }
  bool varies_with_batch_or_head() const override {
    return a_->varies_with_batch_or_head() || b_->varies_with_batch_or_head();
  }

 private:
  std::shared_ptr<const Mask> a_, b_;
};

class FullMask final : public Mask {
 public:
  FullMask(Params p, MaskShape s) : Mask("full", std::move(p), s) {}
  bool allowed(std::int64_t, std::int64_t, std::int64_t, std::int64_t) const override { return true; }
  TileState tile(std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t) const override {
    return TileState::full;
  }
};

// Key k is visible to query q when k <= q + (Lk - Lq): bottom-right aligned, so the last query sees
// every key and, for Lq > Lk, the first Lq - Lk queries see none.
class CausalMask final : public Mask {
 public:
  CausalMask(Params p, MaskShape s) : Mask("causal", std::move(p), s) {}
  bool allowed(std::int64_t, std::int64_t, std::int64_t q, std::int64_t k) const override {
    return k <= q + shape().offset();
  }
  TileState tile(std::int64_t, std::int64_t, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) const override {
    const std::int64_t off = shape().offset();
    if (k1 - 1 <= q0 + off) return TileState::full;
    if (k0 > q1 - 1 + off) return TileState::empty;
    return TileState::partial;
  }
};

const MaskRegistration full_registration{
    MaskKind{"full", "every query sees every key", {}, [](const Params& p, const MaskShape& s) {
               return std::make_shared<const FullMask>(p, s);
             }}};
const MaskRegistration causal_registration{
    MaskKind{"causal",
             "query q sees keys k <= q + (kv_len - q_len) (bottom-right aligned)",
             {},
             [](const Params& p, const MaskShape& s) { return std::make_shared<const CausalMask>(p, s); }}};

}  // namespace

std::shared_ptr<const Mask> intersect_masks(std::shared_ptr<const Mask> a, std::shared_ptr<const Mask> b) {
  if (a->is_full()) return b;
  if (b->is_full()) return a;
  return std::make_shared<const IntersectionMask>(std::move(a), std::move(b));
}

}  // namespace attnbench
