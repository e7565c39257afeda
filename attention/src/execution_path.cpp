// Names of the execution paths (execution_path.hpp). Kept apart from the plan so that tools
// that only parse experiment files (fuzz_toml) can compile it without the executor.
#include "spattn/attention/execution_path.hpp"

#include <fmt/format.h>

#include <array>

#include "spattn/patterns/error.hpp"

namespace spattn {

std::string_view execution_path_name(ExecutionPath p) {
  switch (p) {
    case ExecutionPath::Auto:
      return "auto";
    case ExecutionPath::Tiles:
      return "tiles";
    case ExecutionPath::Runs:
      return "runs";
    case ExecutionPath::Gather:
      return "gather";
    case ExecutionPath::Diagonals:
      return "diagonals";
    case ExecutionPath::Classes:
      return "classes";
  }
  return "?";
}

namespace {
constexpr std::array kPaths = {ExecutionPath::Auto,      ExecutionPath::Tiles,
                               ExecutionPath::Runs,      ExecutionPath::Gather,
                               ExecutionPath::Diagonals, ExecutionPath::Classes};
}  // namespace

std::vector<std::string> execution_path_name_list() {
  std::vector<std::string> out;
  for (const ExecutionPath p : kPaths) out.emplace_back(execution_path_name(p));
  return out;
}

std::string execution_path_names() {
  return fmt::format("{}", fmt::join(execution_path_name_list(), ", "));
}

std::optional<ExecutionPath> find_execution_path(std::string_view name) {
  for (const ExecutionPath p : kPaths)
    if (execution_path_name(p) == name) return p;
  return std::nullopt;
}

ExecutionPath parse_execution_path(std::string_view name) {
  if (const auto p = find_execution_path(name)) return *p;
  throw UsageError(fmt::format("execution path '{}': use one of {}", name, execution_path_names()));
}

}  // namespace spattn
