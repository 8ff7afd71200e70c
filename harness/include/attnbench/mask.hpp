// One definition of an attention mask, shared by the float64 oracle, the CPU kernels and the CUDA kernels.
//
// A mask is a predicate allowed(b, h, q, k) with a name and parameters. Query and key positions are
// aligned at the end (bottom-right, as FlashAttention 2.1+ does): for Lq queries and Lk keys, query q
// sits at absolute position q + (Lk - Lq). Kernels skip tiles that a mask empties by asking tile().
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attnbench/params.hpp"

namespace attnbench {

enum class TileState : std::uint8_t { empty, partial, full };

struct MaskShape {
  std::int64_t batch = 1, heads = 1, q_len = 0, k_len = 0;
  std::int64_t offset() const { return k_len - q_len; }  // absolute position of query 0
};

class Mask {
 public:
  Mask(std::string name, Params params, MaskShape shape)
      : name_(std::move(name)), params_(std::move(params)), shape_(shape) {}
  virtual ~Mask() = default;

  const std::string& name() const { return name_; }
  const Params& params() const { return params_; }
  const MaskShape& shape() const { return shape_; }
  bool is_full() const { return name_ == "full"; }
  bool is_causal() const { return name_ == "causal"; }

  virtual bool allowed(std::int64_t b, std::int64_t h, std::int64_t q, std::int64_t k) const = 0;

  // Whether the tile of queries [q0, q1) x keys [k0, k1) is empty, full or mixed. The default checks
  // every element (exact, O(tile)); masks with a closed form override it.
  virtual TileState tile(std::int64_t b, std::int64_t h, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                         std::int64_t k1) const;

  // Whether allowed() depends on b or h; lets kernels compute one block map for all heads.
  virtual bool varies_with_batch_or_head() const { return false; }

  // Fraction of (q, k) pairs allowed, counted exactly (used for FLOP counts of masked methods).
  double density() const;

 private:
  std::string name_;
  Params params_;
  MaskShape shape_;
};

// Tile states for one (b, h) over a grid of block_q x block_k tiles, row-major.
struct BlockMap {
  std::int64_t block_q = 0, block_k = 0, q_tiles = 0, k_tiles = 0;
  std::vector<TileState> states;
  TileState at(std::int64_t qt, std::int64_t kt) const { return states[qt * k_tiles + kt]; }
  std::int64_t count(TileState s) const;
};
BlockMap lower_to_block_map(const Mask& mask, std::int64_t b, std::int64_t h, std::int64_t block_q,
                            std::int64_t block_k);

// Mask kinds register themselves; a problem names one and its parameters.
struct MaskKind {
  std::string name;
  std::string doc;
  std::vector<ParamSpec> params;
  std::function<std::shared_ptr<const Mask>(const Params&, const MaskShape&)> make;
};

class MaskRegistry {
 public:
  static MaskRegistry& instance();
  void add(MaskKind kind);
  const MaskKind* find(const std::string& name) const;
  std::vector<const MaskKind*> all() const;

 private:
  std::map<std::string, MaskKind> kinds_;
};

std::shared_ptr<const Mask> make_mask(const std::string& name, const json& params, const MaskShape& shape);

// Both masks at once (a sparse method's pattern under the problem's own mask). A full side is dropped,
// so intersecting with "full" returns the other mask unchanged. Named "a&b".
std::shared_ptr<const Mask> intersect_masks(std::shared_ptr<const Mask> a, std::shared_ptr<const Mask> b);

struct MaskRegistration {
  explicit MaskRegistration(MaskKind kind) { MaskRegistry::instance().add(std::move(kind)); }
};

}  // namespace attnbench
