#include "spattn/patterns/memory.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "spattn/patterns/error.hpp"

namespace spattn {

std::int64_t available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  std::int64_t kib = 0;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:" && kib > 0) return kib * 1024;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::int64_t{8} << 30;
  return static_cast<std::int64_t>(pages) * page;
}

std::int64_t default_memory_budget() {
  return available_memory_bytes() / 4 * 3;
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
  throw BudgetError(fmt::format("{} needs an estimated {} but the memory budget is {}; {}", what,
                                format_bytes(estimate_bytes), format_bytes(budget_bytes),
                                how_to_raise));
}

}  // namespace spattn
