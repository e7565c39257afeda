#pragma once
// Markdown tables and the fixed number formats of table.md (internal to the report). Fixed
// formats only, so the bytes depend on the values alone; a value that is not finite prints "-".
#include <cstdint>
#include <string>
#include <vector>

namespace spattn::experiments::report {

inline const std::string kNone = "-";  // the cell of a figure that is absent

std::string fmt_ms(double seconds);  // milliseconds, 3 to 4 significant digits
std::string fmt_bytes(double b);     // "512 B", "1.5 KiB", "64.0 MiB", "1.00 GiB"
std::string fmt_fixed(double v, int decimals);
std::string fmt_ratio(double v);  // "8.19x"
std::string fmt_sci(double v);    // "1.23e-04"
std::string fmt_count(double v);  // integer part

// "1K", "3K", "1M" when N is a multiple of 1024 (column headers), else the number.
std::string short_n(std::int64_t n);

// A Markdown table, columns padded so it also reads well as plain text. Rows shorter than the
// head are filled with "-"; '|' in a cell is escaped and line breaks become spaces.
struct Table {
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;

  std::string render() const;
};

}  // namespace spattn::experiments::report
