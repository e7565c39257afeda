#pragma once
// Memory available to spattn, the default budget for work that could exhaust it, and the
// up-front refusal every budgeted allocation shares.
#include <cstdint>
#include <string>
#include <string_view>

namespace spattn {

// Bytes the kernel reports as available now (MemAvailable in /proc/meminfo), else physical
// memory, else 8 GiB; at most the process's address-space limit (RLIMIT_AS) when one is set.
std::int64_t available_memory_bytes();

// The default budget for one piece of work (layout build, reference executor, element export):
// 3/4 of available_memory_bytes() at the time of the call.
std::int64_t default_memory_budget();

// Throws BudgetError when `estimate_bytes` exceeds `budget_bytes`, naming `what`, the estimate,
// the budget and how to change it (`how_to_raise`, e.g. "--memory-budget").
void check_memory_budget(std::string_view what, std::int64_t estimate_bytes,
                         std::int64_t budget_bytes, std::string_view how_to_raise);

// Parses a byte count written "<number> [unit]" ("1000000", "512MiB", "2 GiB", "1.5G"): a
// decimal number with an optional fraction, then an optional unit B, K/KB/KiB, M/MB/MiB,
// G/GB/GiB, T/TB/TiB (case-insensitive, all powers of 1024), spaces around the unit allowed;
// rounded down to whole bytes, which must be 1..max_bytes. Throws UsageError
// "<subject> <what is wrong>: use <what is allowed>"; `subject` names the value and where it
// came from (e.g. "--memory-budget '4X'").
std::int64_t parse_byte_count(std::string_view text, std::string_view subject,
                              std::int64_t max_bytes);

// Human-readable byte count: "812 B", "3.2 MiB", "17.0 GiB".
std::string format_bytes(std::int64_t bytes);

}  // namespace spattn
