#pragma once
// The pairs of a global layout between one rank's queries and a subset of the key tiles, as a
// Pattern over the local geometry (queries: the shard's rows; keys: the chosen tiles' rows, packed
// in ascending tile order), so that build_layout makes the layout of one visiting piece in time
// proportional to its kept tiles (every fast path is a lookup in the global layout).
#include <algorithm>
#include <string>
#include <vector>

#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/pattern.hpp"

namespace spattn::distributed::detail {

class TileSubsetPattern final : public Pattern {
 public:
  // `layout`: the global layout; `q_tiles`: the global query tile of each local query tile;
  // `tiles`: the global key tile of each local key tile, ascending.
  TileSubsetPattern(const Layout& layout, std::vector<std::int64_t> q_tiles,
                    std::vector<std::int32_t> tiles)
      : layout_(layout), q_tiles_(std::move(q_tiles)), tiles_(std::move(tiles)) {}

  bool allows(const Geometry& g, int head, std::int64_t i, std::int64_t j) const override {
    return global(head).allows(global_query(g, i), global_key(g, j));
  }
  std::string spec() const override { return "distributed_piece"; }
  bool key_ranges(const Geometry& g, int head, std::int64_t q_begin, std::int64_t q_end,
                  std::vector<KeyRange>& out) const override {
    out.clear();
    const BlockLayout& L = global(head);
    for (std::int64_t lr = q_begin / g.block_q; lr <= (q_end - 1) / g.block_q; ++lr) {
      const std::int64_t r = q_tiles_[static_cast<std::size_t>(lr)];
      for (std::int64_t t = L.row_ptr()[r]; t < L.row_ptr()[r + 1]; ++t) {
        const auto it = std::lower_bound(tiles_.begin(), tiles_.end(), L.col_index()[t]);
        if (it == tiles_.end() || *it != L.col_index()[t]) continue;
        const std::int64_t j = it - tiles_.begin();
        out.push_back({j * g.block_k, std::min(g.nk, (j + 1) * g.block_k)});
      }
    }
    normalize_ranges(out, g.nk);
    return true;
  }
  TileClass classify(const Geometry& g, int head, const Tile& t) const override {
    const std::int64_t kept = find(g, head, t);
    if (kept < 0) return TileClass::Empty;
    return global(head).tile_class(kept);
  }
  void fill_tile(const Geometry& g, int head, const Tile& t, TileMask& mask) const override {
    const std::int64_t kept = find(g, head, t);
    if (kept < 0) return;
    const BlockLayout& L = global(head);
    if (L.tile_class(kept) == TileClass::Full) {
      mask.fill();
      return;
    }
    const std::uint64_t* bits = L.mask(L.mask_index()[kept]);
    const int words = words_per_row(t.cols());
    for (std::int64_t r = 0; r < t.rows(); ++r)
      std::copy(bits + r * L.mask_row_words(), bits + r * L.mask_row_words() + words, mask.row(r));
  }
  bool bounds_keys() const override { return true; }
  bool analytic_tiles() const override { return true; }
  bool depends_on_head() const override { return layout_.distinct.size() > 1; }
  std::string head_spec(int head) const override {
    return "distributed_piece@" + std::to_string(layout_.head_to_distinct[head]);
  }

 private:
  const BlockLayout& global(int head) const {
    return layout_.head(layout_.head_to_distinct.size() == 1 ? 0 : head);
  }
  std::int64_t global_query(const Geometry& g, std::int64_t i) const {
    return q_tiles_[static_cast<std::size_t>(i / g.block_q)] * g.block_q + i % g.block_q;
  }
  std::int64_t global_key(const Geometry& g, std::int64_t j) const {
    return std::int64_t{tiles_[j / g.block_k]} * g.block_k + j % g.block_k;
  }
  // Index of the global kept tile behind local tile t, or -1.
  std::int64_t find(const Geometry& g, int head, const Tile& t) const {
    const BlockLayout& L = global(head);
    const std::int64_t r = q_tiles_[static_cast<std::size_t>(t.q_begin / g.block_q)];
    const std::int32_t c = tiles_[t.k_begin / g.block_k];
    const auto cols = L.col_index();
    const auto b = cols.begin() + L.row_ptr()[r], e = cols.begin() + L.row_ptr()[r + 1];
    const auto it = std::lower_bound(b, e, c);
    return it != e && *it == c ? it - cols.begin() : -1;
  }

  const Layout& layout_;
  std::vector<std::int64_t> q_tiles_;
  std::vector<std::int32_t> tiles_;
};

}  // namespace spattn::distributed::detail
