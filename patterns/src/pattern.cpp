#include "spattn/patterns/pattern.hpp"

#include <fmt/format.h>

namespace spattn {

void Pattern::check(const Geometry&) const {}

bool Pattern::key_ranges(const Geometry&, int, std::int64_t, std::int64_t,
                         std::vector<KeyRange>&) const {
  return false;
}

void Pattern::full_key_ranges(const Geometry&, int, std::int64_t, std::int64_t,
                              std::vector<KeyRange>& out) const {
  out.clear();
}

TileClass Pattern::classify(const Geometry& g, int head, const Tile& t) const {
  return detail::scan_classify(*this, g, head, t);
}

void Pattern::fill_tile(const Geometry& g, int head, const Tile& t, TileMask& mask) const {
  detail::scan_fill(*this, g, head, t, mask);
}

std::string Pattern::scanned_part() const {
  return bounds_keys() && analytic_tiles() ? std::string() : spec();
}

PatternPtr Pattern::resolve(const SelectorResolver&, const std::vector<bool>&) const {
  return nullptr;
}

std::string Pattern::head_spec(int head) const {
  return depends_on_head() ? fmt::format("{}@{}", spec(), head) : spec();
}

namespace detail {

TileClass scan_classify(const Pattern& p, const Geometry& g, int head, const Tile& t) {
  bool any_allowed = false, any_denied = false;
  for (std::int64_t i = t.q_begin; i < t.q_end; ++i)
    for (std::int64_t j = t.k_begin; j < t.k_end; ++j) {
      if (p.allows(g, head, i, j))
        any_allowed = true;
      else
        any_denied = true;
      if (any_allowed && any_denied) return TileClass::Partial;
    }
  return any_allowed ? TileClass::Full : TileClass::Empty;
}

void scan_fill(const Pattern& p, const Geometry& g, int head, const Tile& t, TileMask& mask) {
  for (std::int64_t i = t.q_begin; i < t.q_end; ++i)
    for (std::int64_t j = t.k_begin; j < t.k_end; ++j)
      if (p.allows(g, head, i, j)) mask.set(i - t.q_begin, j - t.k_begin);
}

}  // namespace detail
void Pattern::diagonal_cover(const Geometry&, int, DiagonalCover& out) const {
  out.clear();
}

}  // namespace spattn
