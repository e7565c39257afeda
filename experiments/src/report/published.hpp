#pragma once
// The published figures of [[report.published]] beside the measured ones (internal to the
// report).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "report/points.hpp"
#include "spattn/experiments/experiment.hpp"

namespace spattn::experiments::report {

// "## Published against measured": one table per entry of `published` (the header's
// report.published, already validated), with the ratio meant to carry over to a CPU: the
// speedup and its growth over N ("speedup"), the exponent between successive N ("time_ms"), or
// the slopes of allowed pairs and time against N ("pairs_slope"). "" when there is none.
std::string published_section(const std::vector<Point>& pts, const std::string& baseline,
                              const std::vector<PublishedFigures>& published);

}  // namespace spattn::experiments::report
