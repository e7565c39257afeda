#include "spattn/patterns/io/memory.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <string>

#include "spattn/patterns/error.hpp"

namespace spattn {

namespace {

std::int64_t system_available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  std::int64_t kib = 0;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:" && kib > 0) return kib * 1024;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::int64_t{8} << 30;
  return static_cast<std::int64_t>(pages) * page;
}

}  // namespace

std::int64_t available_memory_bytes() {
  const std::int64_t available = system_available_bytes();
  // An address-space limit (ulimit -v, a sweep's per-point limit) caps what this process can
  // allocate, whatever the machine has free.
  rlimit lim{};
  if (getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
      lim.rlim_cur < static_cast<rlim_t>(available))
    return static_cast<std::int64_t>(lim.rlim_cur);
  return available;
}

std::int64_t default_memory_budget() {
  return available_memory_bytes() / 4 * 3;
}

std::int64_t parse_byte_count(std::string_view s, std::string_view subject,
                              std::int64_t max_bytes) {
  const auto bad = [&](std::string_view why) {
    throw UsageError(fmt::format(
        "{} {}: use a byte count like 1000000, \"512MiB\", \"2GiB\" or \"1.5G\" (units B, K, "
        "M, G, T with optional B or iB; powers of 1024)",
        subject, why));
  };
  std::size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  const std::size_t num_begin = i;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  const std::string_view number = s.substr(num_begin, i - num_begin);
  if (number.empty() || number.front() == '.' || number.back() == '.' ||
      std::count(number.begin(), number.end(), '.') > 1 || number.size() > 30)
    bad("does not start with a number");
  double value = 0;
  const auto res = std::from_chars(number.data(), number.data() + number.size(), value,
                                   std::chars_format::fixed);
  if (res.ec != std::errc() || res.ptr != number.data() + number.size())
    bad("does not start with a number");
  while (i < s.size() && s[i] == ' ') ++i;
  std::string unit;
  for (; i < s.size() && s[i] != ' '; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    unit += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  while (i < s.size() && s[i] == ' ') ++i;
  if (i != s.size()) bad("has text after the unit");
  static const std::map<std::string, double, std::less<>> kUnits = {{"", 1.0},
                                                                    {"b", 1.0},
                                                                    {"k", 1024.0},
                                                                    {"kb", 1024.0},
                                                                    {"kib", 1024.0},
                                                                    {"m", 1048576.0},
                                                                    {"mb", 1048576.0},
                                                                    {"mib", 1048576.0},
                                                                    {"g", 1073741824.0},
                                                                    {"gb", 1073741824.0},
                                                                    {"gib", 1073741824.0},
                                                                    {"t", 1099511627776.0},
                                                                    {"tb", 1099511627776.0},
                                                                    {"tib", 1099511627776.0}};
  const auto u = kUnits.find(unit);
  if (u == kUnits.end()) {
    bad(fmt::format("has an unknown unit {}", spattn::quoted(unit)));
  }
  const double bytes = std::floor(value * u->second);
  // 9.2e18 < 2^63: the cast below stays defined whatever max_bytes is.
  if (!(bytes >= 1) || bytes > static_cast<double>(max_bytes) || bytes >= 9.2e18)
    throw UsageError(
        fmt::format("{} is out of range: allowed 1 byte..{} bytes", subject, max_bytes));
  return static_cast<std::int64_t>(bytes);
}

std::string format_bytes(std::int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (b < 1024.0 * 1024) return fmt::format("{:.1f} KiB", b / 1024);
  if (b < 1024.0 * 1024 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  return fmt::format("{:.1f} GiB", b / (1024.0 * 1024 * 1024));
}

void check_memory_budget(std::string_view what, std::int64_t estimate_bytes,
                         std::int64_t budget_bytes, std::string_view how_to_raise) {
  if (estimate_bytes <= budget_bytes) return;
  throw BudgetError(fmt::format(
      "{} needs an estimated {} but the memory budget is {}: raise the budget with {} (or make "
      "the work smaller)",
      what, format_bytes(estimate_bytes), format_bytes(budget_bytes), how_to_raise));
}

}  // namespace spattn
