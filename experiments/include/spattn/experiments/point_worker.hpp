#pragma once
// The child side of a sweep point (`spattn point FILE`).
#include <filesystem>

namespace spattn::experiments {

// Reads the point JSON in `point_file` (point_to_json), runs measure_point, prints its Measurement
// record (to_json) as one JSON line on stdout and returns the process exit code: 0 ok; 1 runtime
// error; 2 usage error (bad point file or parameters); 3 out of memory (std::bad_alloc or
// BudgetError). Errors go to stderr as one line each.
int run_point_worker(const std::filesystem::path& point_file);

}  // namespace spattn::experiments
