// spattn: the command-line tool. Exit codes: 0 ok, 2 usage errors (bad command line, spec or
// parameters), 1 runtime errors (refused work, I/O).
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/plugins.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "spattn: sparse attention toolkit. Build block-sparse layouts from pattern spec strings, "
      "inspect and export them, run attention over them and sweep experiments.",
      "spattn"};
  app.set_version_flag("--version", "spattn " SPATTN_VERSION);
  app.require_subcommand(0, 1);
  app.footer(
      "Run 'spattn COMMAND --help' for the options of a command.\nEnvironment: SPATTN_PLUGINS, "
      "plugins to load before any --plugin (paths separated by ':').");
  std::vector<std::string> plugins;
  app.add_option("--plugin", plugins,
                 "Load a pattern plugin (a shared library defining SPATTN_PLUGIN) before the "
                 "command runs; repeatable. Its patterns then work in every spec")
      ->type_name("PATH")
      ->allow_extra_args(false);
  app.fallthrough();  // --plugin may also follow the command's name

  const std::vector<spattn::cli::Command> commands = {
      spattn::cli::add_patterns_command(app), spattn::cli::add_mask_command(app),
      spattn::cli::add_stats_command(app),    spattn::cli::add_run_command(app),
      spattn::cli::add_sweep_command(app),    spattn::cli::add_report_command(app),
      spattn::cli::add_point_command(app),    spattn::cli::add_search_command(app),
      spattn::cli::add_decode_command(app),   spattn::cli::add_merge_command(app)};

  try {
    spattn::cli::check_long_options(app, std::vector<std::string>(argv + 1, argv + argc));
  } catch (const spattn::UsageError& e) {
    std::cerr << "spattn: error: " << e.what() << "\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "spattn: error: " << e.what() << "\nRun 'spattn --help' for usage.\n";
    return 2;
  }

  for (const spattn::cli::Command& cmd : commands) {
    if (!cmd.app->parsed()) continue;
    try {
      if (const char* env = std::getenv(spattn::kPluginsEnvironmentVariable))
        for (const std::string& p : spattn::split_plugin_list(env)) spattn::load_plugin(p);
      for (const std::string& p : plugins) spattn::load_plugin(p);
      cmd.run();
      return 0;
    } catch (const spattn::UsageError& e) {
      std::cerr << "spattn: error: " << e.what() << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "spattn: error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << app.help();
  return 2;
}
