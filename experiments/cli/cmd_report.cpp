// spattn report DIR: regenerates results.csv and table.md from DIR/results.jsonl alone.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "cli_common.hpp"
#include "spattn/experiments/report.hpp"

namespace spattn::cli {

namespace {
struct ReportOptions {
  std::string dir;
  bool print = false;
};
}  // namespace

Command add_report_command(CLI::App& app) {
  auto opts = std::make_shared<ReportOptions>();
  CLI::App* sub = app.add_subcommand(
      "report",
      "Regenerate results.csv and table.md of a sweep from its results.jsonl (the table layout "
      "comes from the experiment's [report] settings recorded in the file's header).");
  sub->add_option("DIR", opts->dir, "results directory holding results.jsonl")->required();
  sub->add_flag("--print", opts->print, "also print table.md on stdout");
  return {sub, [opts] {
            const std::filesystem::path dir(opts->dir);
            experiments::write_reports(dir);
            if (opts->print) {
              std::ifstream in(dir / "table.md", std::ios::binary);
              std::cout << std::string(std::istreambuf_iterator<char>(in),
                                       std::istreambuf_iterator<char>());
            }
            std::cout << "wrote " << (dir / "results.csv").string() << "\n"
                      << "wrote " << (dir / "table.md").string() << "\n";
          }};
}

}  // namespace spattn::cli
