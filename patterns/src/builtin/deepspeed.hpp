#pragma once
// Internal base of the ds_* patterns: DeepSpeed's SparsityConfig families
// (deepspeed/ops/sparse_attention/sparsity_config.py) with their exact block semantics.
//
// DeepSpeed describes a layout as cells [head, query block, key block] of `block` x `block`
// tokens over a square sequence (seq_len = nq = nk, a multiple of block). A kept cell keeps all
// of its block x block pairs, even on the diagonal of a "unidirectional" layout: pair (i, j) is
// allowed iff cell [h, i / block, j / block] is 1. The executor tiles (Geometry::block_q/block_k)
// are independent of `block`.
//
// Each family computes the kept key blocks of one block row on demand (row_blocks), so a layout
// builds in time proportional to its kept blocks; DeepSpeed's own make_layout fills a dense
// [heads, nb, nb] tensor.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "leaf.hpp"

namespace spattn::builtin::ds {

// Parameters every SparsityConfig has.
struct Common {
  std::int64_t block = 16;
  std::optional<std::int64_t> num_heads;  // absent: the geometry's heads
  bool per_head = false;                  // different_layout_per_head
};

// Reads block, num_heads and different_layout_per_head from validated arguments.
Common common_from(const Args& a);

// "unidirectional" -> true, "bidirectional" -> false; anything else is a UsageError naming the
// family and the value.
bool parse_unidirectional(const std::string& family, const std::string& attention);

// global_block_indices and the optional global_block_end_indices of `family`, checked as
// DeepSpeed checks them (equal lengths, each start below its end).
struct GlobalBlocks {
  std::vector<std::int64_t> starts;
  std::optional<std::vector<std::int64_t>> ends;
};
GlobalBlocks parse_global_blocks(const std::string& family, const Args& a);

// ParamSpecs shared by the families (DeepSpeed's names and defaults).
ParamSpec block_param();
ParamSpec num_heads_param();
ParamSpec flag_param(std::string name, std::string doc);  // boolean, default false
ParamSpec attention_param(const char* def);
ParamSpec seed_param();
ParamSpec int_list_param(std::string name, std::vector<std::int64_t> def, bool has_default,
                         std::string doc);

// Draws `count` distinct block columns uniformly from [0, population) for (seed, head class,
// block row): a pure function of its arguments (splitmix64 counter hash, Floyd's sampling).
// Appends one range per column to `out`.
void random_blocks(std::uint64_t seed, std::int64_t head_class, std::int64_t row,
                   std::int64_t population, std::int64_t count, std::vector<KeyRange>& out);

class DsPattern : public Leaf {
 public:
  DsPattern(std::string name, Common c);

  // Appends the kept key-block columns of block row r (0 <= r < nb) for head h as ranges
  // [begin, end) of block indices, in any order, possibly overlapping or empty.
  virtual void row_blocks(int h, std::int64_t nb, std::int64_t r,
                          std::vector<KeyRange>& out) const = 0;
  // Heads with equal layout_class(h) have equal layouts (DeepSpeed's propagation of head 0 when
  // different_layout_per_head is false, and per-head choices otherwise).
  virtual std::int64_t layout_class(int h) const;

  // Sorted, merged kept block ranges of block row r (cached per thread).
  const std::vector<KeyRange>& row(int h, std::int64_t nb, std::int64_t r) const;

  bool allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const override;
  void check(const Geometry& g) const override;
  bool key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override;
  void full_key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override;
  TileClass classify(const Geometry& g, int h, const Tile& t) const override;
  void fill_tile(const Geometry& g, int h, const Tile& t, TileMask& m) const override;
  std::string head_spec(int h) const override;

 protected:
  // "NAME(block=B" plus num_heads and different_layout_per_head when set; the caller appends
  // its own arguments and ")".
  std::string spec_head() const;
  std::int64_t blocks_of(const Geometry& g) const { return g.nk / c_.block; }

  std::string name_;
  Common c_;

 private:
  std::uint64_t id_;  // unique per instance, never reused: keys the per-thread row cache
};

}  // namespace spattn::builtin::ds
