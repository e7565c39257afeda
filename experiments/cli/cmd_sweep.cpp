// Placeholder: replaced by the real subcommand.
#include "cli_common.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::cli {
Command add_sweep_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("sweep", "(not yet available)");
  return {sub, [] { throw UsageError("spattn sweep: not yet available"); }};
}
}  // namespace spattn::cli
