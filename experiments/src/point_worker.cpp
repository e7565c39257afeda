// `spattn point FILE`: one sweep point, measured in this process, its Measurement record printed
// on stdout as one JSON line.
#include "spattn/experiments/point_worker.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>

#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/plugins.hpp"
#include "spattn/patterns/io/regular_file.hpp"

namespace spattn::experiments {

int run_point_worker(const std::filesystem::path& point_file) {
  try {
    std::int64_t size = 0;
    std::ifstream in = open_regular_file(point_file.string(), "a point file", size);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded())
      throw UsageError(fmt::format("the point file {} is not JSON", point_file.string()));
    const SweepPoint point = point_from_json(j);
    for (const std::string& plugin : point.plugins) load_plugin(plugin);
    const Measurement result = measure_point(point);
    const std::string line =
        to_json(result).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    if (std::fflush(stdout) != 0) {
      std::fputs("spattn point: cannot write the result to stdout\n", stderr);
      return 1;
    }
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "spattn point: error: %s\n", e.what());
    return 2;
  } catch (const BudgetError& e) {
    std::fprintf(stderr, "spattn point: out of memory: %s\n", e.what());
    return 3;
  } catch (const std::bad_alloc&) {
    std::fputs("spattn point: out of memory: an allocation failed (std::bad_alloc)\n", stderr);
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spattn point: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace spattn::experiments
