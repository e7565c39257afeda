#include "spattn/patterns/selector.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "spattn/patterns/error.hpp"

namespace spattn {

std::string no_inputs_message(const std::string& selector_spec) {
  return fmt::format(
      "'{}' selects its keys from Q and K, so it has no layout without them: pass --inputs DIR "
      "(q.npy and k.npy, as `spattn run --inputs` reads them), or use a static pattern",
      selector_spec);
}

bool Selector::allows(const Geometry&, int, std::int64_t, std::int64_t) const {
  throw UsageError(no_inputs_message(spec_));
}

void Selector::check(const Geometry&) const {
  throw UsageError(no_inputs_message(spec_));
}

PatternPtr resolve_selectors(const PatternPtr& pattern, const SelectorResolver& r, int heads) {
  PatternPtr out = pattern->resolve(r, std::vector<bool>(static_cast<std::size_t>(heads), true));
  return out ? out : pattern;
}

void SelectedHead::add_group(std::vector<KeyRange> group_ranges, std::int64_t nk) {
  normalize_ranges(group_ranges, nk);
  ranges.insert(ranges.end(), group_ranges.begin(), group_ranges.end());
  group_ptr.push_back(static_cast<std::int64_t>(ranges.size()));
}

namespace {

// Index of p's group, or -1 when p falls outside the stored groups.
std::int64_t group_of(const SelectedHead& s, std::int64_t p) {
  if (s.group_rows <= 0) return -1;
  const std::int64_t g = floor_div(p - s.origin, s.group_rows) - s.first_group;
  return g >= 0 && g < s.groups() ? g : -1;
}

bool by_begin(const KeyRange& a, const KeyRange& b) {
  return a.begin < b.begin;
}

bool in_ranges(const KeyRange* begin, const KeyRange* end, std::int64_t j) {
  const KeyRange* it =
      std::upper_bound(begin, end, j, [](std::int64_t x, const KeyRange& r) { return x < r.end; });
  return it != end && it->begin <= j;
}

}  // namespace

bool SelectedHead::allows(std::int64_t p, std::int64_t j) const {
  if (causal && j > p) return false;
  if (const std::int64_t g = group_of(*this, p); g >= 0) {
    if (in_ranges(ranges.data() + group_ptr[g], ranges.data() + group_ptr[g + 1], j)) return true;
  }
  if (std::binary_search(columns.begin(), columns.end(), j)) return true;
  return std::binary_search(offsets.begin(), offsets.end(), p - j);
}

std::int64_t SelectedHead::bytes() const {
  return static_cast<std::int64_t>(sizeof(*this) + group_ptr.size() * sizeof(std::int64_t) +
                                   ranges.size() * sizeof(KeyRange) +
                                   (columns.size() + offsets.size()) * sizeof(std::int64_t));
}

bool SelectedPattern::allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const {
  const SelectedHead* s = head(h);
  return s != nullptr && s->allows(g.position(i), j);
}

bool SelectedPattern::key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                                 std::vector<KeyRange>& out) const {
  out.clear();
  const SelectedHead* s = head(h);
  if (s == nullptr || q0 >= q1) return true;
  const std::int64_t p0 = g.position(q0), p1 = g.position(q1 - 1);
  // Three lists sorted by begin, merged (normalize_ranges then needs no sort): the groups'
  // ranges, the columns, and the diagonals (offsets descending = begins ascending).
  std::vector<KeyRange> grp, lines;
  if (s->group_rows > 0) {
    const std::int64_t g0 =
        std::max<std::int64_t>(0, floor_div(p0 - s->origin, s->group_rows) - s->first_group);
    const std::int64_t g1 = std::min<std::int64_t>(
        s->groups() - 1, floor_div(p1 - s->origin, s->group_rows) - s->first_group);
    for (std::int64_t k = g0; k <= g1; ++k)
      grp.insert(grp.end(), s->ranges.begin() + s->group_ptr[k],
                 s->ranges.begin() + s->group_ptr[k + 1]);
    if (g1 > g0) std::sort(grp.begin(), grp.end(), by_begin);
  }
  std::vector<KeyRange> cols, diags;
  cols.reserve(s->columns.size());
  diags.reserve(s->offsets.size());
  for (std::int64_t c : s->columns) cols.push_back({c, c + 1});
  for (auto o = s->offsets.rbegin(); o != s->offsets.rend(); ++o)
    diags.push_back({p0 - *o, p1 - *o + 1});
  lines.resize(cols.size() + diags.size());
  std::merge(cols.begin(), cols.end(), diags.begin(), diags.end(), lines.begin(), by_begin);
  out.resize(lines.size() + grp.size());
  std::merge(lines.begin(), lines.end(), grp.begin(), grp.end(), out.begin(), by_begin);
  normalize_ranges(out, s->causal ? std::min(g.nk, p1 + 1) : g.nk);
  return true;
}

TileClass SelectedPattern::classify(const Geometry& g, int h, const Tile& t) const {
  const SelectedHead* s = head(h);
  if (s == nullptr) return TileClass::Empty;
  if (s->causal && t.k_begin > g.position(t.q_end - 1)) return TileClass::Empty;
  return TileClass::Partial;
}

namespace {

// 64 bits of `bits` starting at bit s (bits beyond the vector read as zero).
std::uint64_t bits_at(const std::vector<std::uint64_t>& bits, std::int64_t s) {
  const auto w = static_cast<std::size_t>(s >> 6);
  const int sh = static_cast<int>(s & 63);
  const std::uint64_t lo = w < bits.size() ? bits[w] >> sh : 0;
  const std::uint64_t hi = sh != 0 && w + 1 < bits.size() ? bits[w + 1] << (64 - sh) : 0;
  return lo | hi;
}

void set_bit(std::vector<std::uint64_t>& bits, std::int64_t b) {
  bits[static_cast<std::size_t>(b >> 6)] |= std::uint64_t{1} << (b & 63);
}

}  // namespace

// Word by word: the tile's selected columns form one bit row C (bit c: key k_begin + c), and its
// diagonals one bit string V of rows + cols - 1 bits (bit y: offset o = p0 - k_begin + rows - 1
// - y, p0 the position of the tile's first row), so that row r's diagonal bits are V's
// cols bits from y = rows - 1 - r on. Each row ORs C and its window of V, cuts them at the
// causal limit and adds its group's key ranges.
void SelectedPattern::fill_tile(const Geometry& g, int h, const Tile& t, TileMask& mask) const {
  const SelectedHead* s = head(h);
  if (s == nullptr) return;
  const std::int64_t rows = t.rows(), cols = t.cols(), words = (cols + 63) / 64;
  std::vector<std::uint64_t> col_bits(static_cast<std::size_t>(words), 0);
  for (auto it = std::lower_bound(s->columns.begin(), s->columns.end(), t.k_begin);
       it != s->columns.end() && *it < t.k_end; ++it)
    set_bit(col_bits, *it - t.k_begin);
  const std::int64_t p0 = g.position(t.q_begin), top = p0 - t.k_begin + rows - 1;
  std::vector<std::uint64_t> diag_bits(static_cast<std::size_t>((rows + cols - 1 + 63) / 64), 0);
  bool any_diag = false;
  // Offsets o in [top - (rows + cols - 2), top].
  for (auto o = std::lower_bound(s->offsets.begin(), s->offsets.end(), top - (rows + cols - 2));
       o != s->offsets.end() && *o <= top; ++o) {
    set_bit(diag_bits, top - *o);
    any_diag = true;
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t p = p0 + r;
    const std::int64_t hi = s->causal ? std::min(t.k_end, p + 1) : t.k_end;  // keys < hi
    if (hi <= t.k_begin) continue;
    std::uint64_t* out = mask.row(r);
    const std::int64_t limit = hi - t.k_begin;  // columns < limit
    for (std::int64_t w = 0; w * 64 < limit; ++w) {
      std::uint64_t word = col_bits[static_cast<std::size_t>(w)];
      if (any_diag) word |= bits_at(diag_bits, 64 * w + rows - 1 - r);
      if (limit - 64 * w < 64) word &= (std::uint64_t{1} << (limit - 64 * w)) - 1;
      out[w] |= word;
    }
    if (const std::int64_t gi = group_of(*s, p); gi >= 0) {
      const KeyRange* b = s->ranges.data() + s->group_ptr[gi];
      const KeyRange* e = s->ranges.data() + s->group_ptr[gi + 1];
      const KeyRange* it = std::upper_bound(
          b, e, t.k_begin, [](std::int64_t x, const KeyRange& kr) { return x < kr.end; });
      for (; it != e && it->begin < hi; ++it)
        mask.set_range(r, std::max(it->begin, t.k_begin) - t.k_begin,
                       std::min(it->end, hi) - t.k_begin);
    }
  }
}

void SelectedPattern::diagonal_cover(const Geometry& g, int h, DiagonalCover& out) const {
  out.clear();
  const SelectedHead* s = head(h);
  if (s == nullptr) return;
  for (std::size_t a = 0; a < s->offsets.size();) {
    std::size_t b = a + 1;
    while (b < s->offsets.size() && s->offsets[b] == s->offsets[b - 1] + 1) ++b;
    // Offsets o >= 0 keep j = p - o <= p, so the causal condition holds on them.
    if (const DiagonalRun run = make_run(g, s->offsets[a], s->offsets[b - 1], 1); !run.empty())
      if (s->offsets[a] >= 0 || !s->causal) out.push_back(run);
    a = b;
  }
}

}  // namespace spattn
