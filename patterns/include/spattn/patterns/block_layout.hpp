#pragma once
// BlockLayout: the block-sparse layout of one head pattern at one geometry.
//
// CSR over query-block rows: row r's kept tiles are key blocks col_index[row_ptr[r]..row_ptr[r+1])
// in increasing order. Each kept tile is Full (mask_index = -1, every pair allowed) or Partial
// (mask_index = m >= 0: bits in mask(m), block_q rows x mask_row_words() words, see TileMask).
// Partial tiles with equal masks share one stored mask (a window's diagonal tiles are all alike),
// so distinct_masks() <= partial_tiles. Memory is O(kept tiles + partial-tile bits), never
// O(nq * nk).
#include <cstdint>
#include <span>
#include <vector>

#include "spattn/patterns/geometry.hpp"
#include "spattn/patterns/tile.hpp"

namespace spattn {

struct LayoutCounts {
  std::int64_t allowed_pairs = 0;   // pairs the pattern allows
  std::int64_t computed_pairs = 0;  // area of kept tiles (what a tile executor computes)
  std::int64_t kept_tiles = 0;
  std::int64_t full_tiles = 0;
  std::int64_t partial_tiles = 0;
  std::int64_t bytes = 0;  // memory held by the layout
  LayoutCounts& operator+=(const LayoutCounts& o);
};

class BlockLayout {
 public:
  BlockLayout() = default;

  std::int64_t nq() const { return nq_; }
  std::int64_t nk() const { return nk_; }
  int block_q() const { return block_q_; }
  int block_k() const { return block_k_; }
  std::int64_t q_blocks() const { return static_cast<std::int64_t>(row_ptr_.size()) - 1; }
  std::int64_t k_blocks() const { return (nk_ + block_k_ - 1) / block_k_; }

  std::span<const std::int64_t> row_ptr() const { return row_ptr_; }
  std::span<const std::int32_t> col_index() const { return col_index_; }
  std::span<const std::int32_t> mask_index() const { return mask_index_; }
  int mask_row_words() const { return mask_row_words_; }
  // Words of one partial mask: block_q * mask_row_words().
  std::int64_t mask_words() const { return std::int64_t{block_q_} * mask_row_words_; }
  const std::uint64_t* mask(std::int32_t m) const { return masks_.data() + m * mask_words(); }
  std::int64_t distinct_masks() const {
    return mask_words() == 0 ? 0 : static_cast<std::int64_t>(masks_.size()) / mask_words();
  }

  // Token rectangle of tile (query block r, key block c), clipped at nq / nk.
  Tile tile(std::int64_t r, std::int64_t c) const;
  // Class of kept tile number t (index into col_index): Full or Partial.
  TileClass tile_class(std::int64_t t) const {
    return mask_index_[t] < 0 ? TileClass::Full : TileClass::Partial;
  }
  // Whether the layout keeps pair (i, j): O(log kept tiles in row).
  bool allows(std::int64_t i, std::int64_t j) const;

  const LayoutCounts& counts() const { return counts_; }

 private:
  friend class BlockLayoutBuilder;
  std::int64_t nq_ = 0, nk_ = 0;
  int block_q_ = 0, block_k_ = 0, mask_row_words_ = 0;
  std::vector<std::int64_t> row_ptr_{0};
  std::vector<std::int32_t> col_index_;
  std::vector<std::int32_t> mask_index_;
  std::vector<std::uint64_t> masks_;
  LayoutCounts counts_;
};

}  // namespace spattn
