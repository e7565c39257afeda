#include "spattn/patterns/tile.hpp"

#include <algorithm>
#include <bit>

namespace spattn {

void normalize_ranges(std::vector<KeyRange>& ranges, std::int64_t nk) {
  std::size_t n = 0;
  for (KeyRange r : ranges) {
    r.begin = std::max<std::int64_t>(r.begin, 0);
    r.end = std::min(r.end, nk);
    if (r.begin < r.end) ranges[n++] = r;
  }
  ranges.resize(n);
  if (!std::is_sorted(ranges.begin(), ranges.end(),
                      [](const KeyRange& a, const KeyRange& b) { return a.begin < b.begin; }))
    std::sort(ranges.begin(), ranges.end(),
              [](const KeyRange& a, const KeyRange& b) { return a.begin < b.begin; });
  std::size_t m = 0;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (m > 0 && ranges[i].begin <= ranges[m - 1].end)
      ranges[m - 1].end = std::max(ranges[m - 1].end, ranges[i].end);
    else
      ranges[m++] = ranges[i];
  }
  ranges.resize(m);
}

void intersect_ranges(const std::vector<KeyRange>& a, const std::vector<KeyRange>& b,
                      std::vector<KeyRange>& out) {
  out.clear();
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const std::int64_t lo = std::max(a[i].begin, b[j].begin);
    const std::int64_t hi = std::min(a[i].end, b[j].end);
    if (lo < hi) out.push_back({lo, hi});
    if (a[i].end < b[j].end)
      ++i;
    else
      ++j;
  }
}

void subtract_ranges(std::vector<KeyRange>& a, const std::vector<KeyRange>& b) {
  std::vector<KeyRange> out;
  std::size_t j = 0;
  for (KeyRange r : a) {
    while (j < b.size() && b[j].end <= r.begin) ++j;
    for (std::size_t k = j; k < b.size() && b[k].begin < r.end; ++k) {
      if (b[k].begin > r.begin) out.push_back({r.begin, b[k].begin});
      r.begin = std::max(r.begin, b[k].end);
    }
    if (r.begin < r.end) out.push_back(r);
  }
  a.swap(out);
}

void TileMask::reset(std::int64_t rows, std::int64_t cols, int row_words) {
  rows_ = rows;
  cols_ = cols;
  row_words_ = std::max(row_words, words_per_row(cols));
  bits_.assign(static_cast<std::size_t>(rows * row_words_), 0);
}

void TileMask::fill() {
  for (std::int64_t r = 0; r < rows_; ++r) set_range(r, 0, cols_);
}

std::int64_t TileMask::popcount() const {
  std::int64_t n = 0;
  for (std::uint64_t w : bits_) n += std::popcount(w);
  return n;
}

void TileMask::and_with(const TileMask& o) {
  for (std::size_t k = 0; k < bits_.size(); ++k) bits_[k] &= o.bits_[k];
}
void TileMask::or_with(const TileMask& o) {
  for (std::size_t k = 0; k < bits_.size(); ++k) bits_[k] |= o.bits_[k];
}
void TileMask::and_not(const TileMask& o) {
  for (std::size_t k = 0; k < bits_.size(); ++k) bits_[k] &= ~o.bits_[k];
}

}  // namespace spattn
