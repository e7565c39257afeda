// spattn report DIR|FILE: regenerates results.csv and table.md from DIR/results.jsonl alone, or
// writes FILE's .csv and .md beside a .jsonl file of measurement records.
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
  std::string path;
  bool print = false;
};
}  // namespace

Command add_report_command(CLI::App& app) {
  auto opts = std::make_shared<ReportOptions>();
  CLI::App* sub = app.add_subcommand(
      "report",
      "Regenerate results.csv and table.md of a sweep from its results.jsonl (the table layout "
      "comes from the experiment's [report] settings recorded in the file's header), or write "
      "NAME.csv and NAME.md beside a NAME.jsonl file of records (e.g. appended by `spattn run "
      "--json`; without a header: layout \"scaling\", baseline \"dense\").");
  sub->add_option("PATH", opts->path,
                  "results directory holding results.jsonl, or a .jsonl file of records")
      ->required();
  sub->add_flag("--print", opts->print, "also print the table on stdout");
  return {sub, [opts] {
            const experiments::ReportFiles files = experiments::write_reports(opts->path);
            if (opts->print) {
              std::ifstream in(files.table, std::ios::binary);
              std::cout << std::string(std::istreambuf_iterator<char>(in),
                                       std::istreambuf_iterator<char>());
            }
            std::cout << "wrote " << files.csv.string() << "\n"
                      << "wrote " << files.table.string() << "\n";
          }};
}

}  // namespace spattn::cli
