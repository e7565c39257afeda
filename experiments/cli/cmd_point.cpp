// spattn point FILE (hidden): the child side of a sweep point. Exit codes: 0 ok, 1 error,
// 2 usage error, 3 out of memory (see experiments/README.md, "Child protocol").
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli_common.hpp"
#include "spattn/experiments/point_worker.hpp"

namespace spattn::cli {

Command add_point_command(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "point", "Measure one sweep point described by a JSON file (run by `spattn sweep`).");
  sub->group("");  // internal: not listed in --help
  sub->add_option("FILE", *file, "point JSON written by the sweep driver")->required();
  return {sub, [file] {
            const int code = experiments::run_point_worker(*file);
            if (code != 0) {
              std::fflush(stdout);
              std::exit(code);
            }
          }};
}

}  // namespace spattn::cli
