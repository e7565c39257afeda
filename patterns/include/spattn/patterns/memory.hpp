#pragma once
// Memory available to spattn, the default budget for work that could exhaust it, and the
// up-front refusal every budgeted allocation shares.
#include <cstdint>
#include <string>
#include <string_view>

namespace spattn {

// Bytes the kernel reports as available now (MemAvailable in /proc/meminfo), else physical
// memory, else 8 GiB.
std::int64_t available_memory_bytes();

// The default budget for one piece of work (layout build, reference executor, element export):
// 3/4 of available_memory_bytes() at the time of the call.
std::int64_t default_memory_budget();

// Throws BudgetError when `estimate_bytes` exceeds `budget_bytes`, naming `what`, the estimate,
// the budget and how to change it (`how_to_raise`, e.g. "--memory-budget").
void check_memory_budget(std::string_view what, std::int64_t estimate_bytes,
                         std::int64_t budget_bytes, std::string_view how_to_raise);

// Human-readable byte count: "812 B", "3.2 MiB", "17.0 GiB".
std::string format_bytes(std::int64_t bytes);

}  // namespace spattn
