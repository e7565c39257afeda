// Placeholder: replaced by the real subcommand.
#include "cli_common.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::cli {
Command add_point_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("point", "(not yet available)");
  return {sub, [] { throw UsageError("spattn point: not yet available"); }};
}
}  // namespace spattn::cli
