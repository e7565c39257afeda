#pragma once
// Tiles and tile masks: the unit a BlockLayout is made of.
#include <cstdint>
#include <span>
#include <vector>

namespace spattn {

// A rectangle of (query index, key index) pairs, half-open: [q_begin, q_end) x [k_begin, k_end).
struct Tile {
  std::int64_t q_begin, q_end, k_begin, k_end;
  std::int64_t rows() const { return q_end - q_begin; }
  std::int64_t cols() const { return k_end - k_begin; }
  std::int64_t area() const { return rows() * cols(); }
};

// Empty: no pair allowed. Full: every pair allowed. Partial: some, or not known without a scan
// (the builder scans Partial tiles and turns all-ones/all-zeros results into Full/Empty).
enum class TileClass : std::uint8_t { Empty = 0, Full = 1, Partial = 2 };

// A half-open interval of key indices [begin, end).
struct KeyRange {
  std::int64_t begin, end;
  bool operator==(const KeyRange&) const = default;
};

// Sorts, clips to [0, nk) and merges overlapping or touching ranges in place.
void normalize_ranges(std::vector<KeyRange>& ranges, std::int64_t nk);
// a = a \ b, both normalized.
void subtract_ranges(std::vector<KeyRange>& a, const std::vector<KeyRange>& b);
// out = a ∩ b, both normalized.
void intersect_ranges(const std::vector<KeyRange>& a, const std::vector<KeyRange>& b,
                      std::vector<KeyRange>& out);

// Bit mask of one tile: row r (query q_begin + r) holds the allowed keys k_begin + c as bit c,
// in words_per_row(cols) 64-bit words. Bits at c >= cols are always zero.
inline int words_per_row(std::int64_t cols) {
  return static_cast<int>((cols + 63) / 64);
}

class TileMask {
 public:
  TileMask() = default;
  // Resets to an all-zero mask of rows x cols with `row_words` >= words_per_row(cols) words per
  // row (the builder uses the layout's fixed row stride).
  void reset(std::int64_t rows, std::int64_t cols, int row_words = 0);
  // Resets to an all-zero mask of the same shape and row stride as `o`.
  void reset_like(const TileMask& o) { reset(o.rows_, o.cols_, o.row_words_); }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  int row_words() const { return row_words_; }
  std::uint64_t* row(std::int64_t r) { return bits_.data() + r * row_words_; }
  const std::uint64_t* row(std::int64_t r) const { return bits_.data() + r * row_words_; }
  bool get(std::int64_t r, std::int64_t c) const { return (row(r)[c >> 6] >> (c & 63)) & 1u; }
  void set(std::int64_t r, std::int64_t c) { row(r)[c >> 6] |= std::uint64_t{1} << (c & 63); }
  // Sets bits [c0, c1) of row r (clipped to [0, cols)).
  void set_range(std::int64_t r, std::int64_t c0, std::int64_t c1) {
    c0 = c0 < 0 ? 0 : c0;
    c1 = c1 > cols_ ? cols_ : c1;
    if (c0 >= c1) return;
    std::uint64_t* w = row(r);
    const std::int64_t first = c0 >> 6, last = (c1 - 1) >> 6;
    const std::uint64_t lo_mask = ~std::uint64_t{0} << (c0 & 63);
    const std::uint64_t hi_mask = ~std::uint64_t{0} >> (63 - ((c1 - 1) & 63));
    if (first == last) {
      w[first] |= lo_mask & hi_mask;
      return;
    }
    w[first] |= lo_mask;
    for (std::int64_t k = first + 1; k < last; ++k) w[k] = ~std::uint64_t{0};
    w[last] |= hi_mask;
  }
  void fill();  // every valid bit set
  std::int64_t popcount() const;
  std::span<const std::uint64_t> words() const { return bits_; }
  std::span<std::uint64_t> words() { return bits_; }
  void and_with(const TileMask& o);
  void or_with(const TileMask& o);
  void and_not(const TileMask& o);

 private:
  std::int64_t rows_ = 0, cols_ = 0;
  int row_words_ = 0;
  std::vector<std::uint64_t> bits_;
};

}  // namespace spattn
