#pragma once
// meta.json: what a sweep ran on and with, so that a results directory explains itself.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "spattn/experiments/experiment.hpp"

namespace spattn::experiments {

// The run's description: git revision (at run time from the source checkout the binary was built
// from, when it is still a git checkout; otherwise the revision recorded when CMake configured
// the build, marked "configure"), compiler id, version, build type and flags, CPU model and
// flags (/proc/cpuinfo), TBB's default thread count, versions of the libraries compiled in,
// host name, `start_time` (UTC, ISO 8601), `command_line` and the experiment file text.
nlohmann::json build_meta(const Experiment& e, const std::vector<std::string>& command_line,
                          const std::string& start_time);

// Writes `meta` to `path` (pretty-printed), through a temporary file and a rename.
void write_meta(const std::filesystem::path& path, const nlohmann::json& meta);

}  // namespace spattn::experiments
