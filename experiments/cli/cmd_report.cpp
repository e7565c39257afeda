// Placeholder: replaced by the real subcommand.
#include "cli_common.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::cli {
Command add_report_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("report", "(not yet available)");
  return {sub, [] { throw UsageError("spattn report: not yet available"); }};
}
}  // namespace spattn::cli
