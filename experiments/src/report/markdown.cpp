// Markdown tables and the fixed number formats of table.md.
#include "report/markdown.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace spattn::experiments::report {

namespace {

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string fmt_ms(double seconds) {
  if (!std::isfinite(seconds)) return kNone;
  const double ms = seconds * 1e3;
  if (ms >= 1000) return fmt::format("{:.0f}", ms);
  if (ms >= 100) return fmt::format("{:.1f}", ms);
  if (ms >= 10) return fmt::format("{:.2f}", ms);
  if (ms >= 0.1) return fmt::format("{:.3f}", ms);
  return fmt::format("{:.4f}", ms);
}

std::string fmt_bytes(double b) {
  if (!std::isfinite(b)) return kNone;
  if (b < 1024) return fmt::format("{:.0f} B", b);
  if (b < 1024.0 * 1024) return fmt::format("{:.1f} KiB", b / 1024);
  if (b < 1024.0 * 1024 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
}

std::string fmt_fixed(double v, int decimals) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, decimals) : kNone;
}
std::string fmt_ratio(double v) {
  return std::isfinite(v) ? fmt::format("{:.2f}x", v) : kNone;
}
std::string fmt_sci(double v) {
  return std::isfinite(v) ? fmt::format("{:.2e}", v) : kNone;
}
std::string fmt_count(double v) {
  return std::isfinite(v) ? fmt::format("{:.0f}", v) : kNone;
}

// "1K", "3K", "1M" when N is a multiple of 1024 (column headers), else the number.
std::string short_n(std::int64_t n) {
  if (n >= (1 << 20) && n % (1 << 20) == 0) return fmt::format("{}M", n >> 20);
  if (n >= 1024 && n % 1024 == 0) return fmt::format("{}K", n >> 10);
  return fmt::format("{}", n);
}

std::string Table::render() const {
  std::vector<std::size_t> w(head.size(), 3);
  auto cells = rows;
  cells.insert(cells.begin(), head);
  for (auto& row : cells) {
    row.resize(head.size(), kNone);
    for (std::size_t c = 0; c < row.size(); ++c) {
      row[c] = md_cell(row[c]);
      w[c] = std::max(w[c], row[c].size());
    }
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& row) {
    out += '|';
    for (std::size_t c = 0; c < row.size(); ++c) out += fmt::format(" {:<{}} |", row[c], w[c]);
    out += '\n';
  };
  line(cells[0]);
  out += '|';
  for (std::size_t c = 0; c < head.size(); ++c) out += std::string(w[c] + 2, '-') + '|';
  out += '\n';
  for (std::size_t r = 1; r < cells.size(); ++r) line(cells[r]);
  return out;
}

}  // namespace spattn::experiments::report
