#pragma once
// Measuring one sweep point in the current process: build the layout (timed), run the flash
// executor (warm-up, then timed repeats), and where it fits, compare with the dense reference and
// with dense attention (fidelity). The sweep driver calls this inside a child process.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "spattn/experiments/experiment.hpp"

namespace spattn::experiments {

// What a point is predicted to need, from its layout's exact counts (cost model) and sizes.
struct PointPrediction {
  std::int64_t allowed_pairs = 0;   // all batches and query heads
  std::int64_t computed_pairs = 0;  // area of kept tiles, all batches and query heads
  double useful_flops = 0, computed_flops = 0;
  std::int64_t memory_bytes = 0;  // inputs + outputs + layout + workspace (+ fidelity/check)
  double seconds = 0;             // predicted wall time of the whole point
};

// Builds the point's layout (bounded by the point's memory limit) and predicts its needs.
// Throws UsageError on a bad spec/geometry, BudgetError when the layout alone exceeds the limit.
PointPrediction predict_point(const SweepPoint& p);

// Runs the point and returns its measurement fields (the "measure" object of a results.jsonl
// record, see experiments/README.md). Throws UsageError on bad input, BudgetError when refused
// by a memory budget; std::bad_alloc propagates.
nlohmann::json measure_point(const SweepPoint& p);

}  // namespace spattn::experiments
