// spattn merge DIR...: the run directories of a sweep's shards combined into one run directory,
// then its reports. Exit codes: 0 merged (missing or duplicate points are reported on stderr),
// 2 usage error (inputs of different sweeps, not run directories), 1 runtime error.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "spattn/experiments/merge.hpp"
#include "spattn/experiments/report.hpp"

namespace spattn::cli {
namespace {

struct MergeCliOptions {
  std::vector<std::string> dirs;
  std::string out = "results";
  std::string dir;
  bool no_report = false;
};

// "a, b, c and 4 more".
std::string some(const std::vector<std::string>& keys, std::size_t max = 5) {
  std::string s;
  for (std::size_t i = 0; i < keys.size() && i < max; ++i) s += (i ? ", " : "") + keys[i];
  if (keys.size() > max) s += fmt::format(" and {} more", keys.size() - max);
  return s;
}

void run(const MergeCliOptions& o) {
  experiments::MergeOptions mo;
  for (const std::string& d : o.dirs) mo.inputs.emplace_back(d);
  mo.out_base = o.out;
  mo.dir = o.dir;
  mo.command_line = own_command_line();
  if (!o.dirs.empty()) load_run_plugins(o.dirs.front());
  const experiments::MergeSummary s = experiments::merge_runs(mo);
  std::vector<std::string> shards;
  for (const int i : s.missing_shards) shards.push_back(fmt::format("{}/{}", i, s.shard_count));
  if (!shards.empty()) std::cerr << "warning: no input holds shard(s) " << some(shards, 20) << "\n";
  shards.clear();
  for (const int i : s.repeated_shards) shards.push_back(fmt::format("{}/{}", i, s.shard_count));
  if (!shards.empty())
    std::cerr << "warning: shard(s) " << some(shards, 20) << " given more than once\n";
  if (!s.duplicates.empty())
    std::cerr << fmt::format(
        "warning: {} point(s) recorded by more than one input (kept one, an \"ok\" one where "
        "there was): {}\n",
        s.duplicates.size(), some(s.duplicates));
  if (!s.unexpected.empty())
    std::cerr << fmt::format("warning: {} point(s) that the experiment does not have: {}\n",
                             s.unexpected.size(), some(s.unexpected));
  if (!s.missing.empty())
    std::cerr << fmt::format(
        "warning: {} of {} point(s) missing: {}\nrun them with: spattn sweep --resume {}\n",
        s.missing.size(), s.expected, some(s.missing), s.dir.string());
  std::cout << fmt::format("{} of {} points merged from {} run(s)\n", s.written, s.expected,
                           o.dirs.size())
            << "wrote " << (s.dir / "results.jsonl").string() << "\n"
            << "wrote " << (s.dir / "meta.json").string() << "\n";
  if (o.no_report) return;
  const experiments::ReportFiles files = experiments::write_reports(s.dir);
  std::cout << "wrote " << files.csv.string() << "\n"
            << "wrote " << files.table.string() << "\n";
}

}  // namespace

Command add_merge_command(CLI::App& app) {
  auto o = std::make_shared<MergeCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "merge",
      "Combine the run directories of one sweep's shards (`spattn sweep --shard i/n`) into one "
      "run directory OUT/NAME/STAMP (header, points in point order, meta.json), then write its "
      "results.csv and table.md. The headers must match; missing and duplicate points are "
      "reported, and `spattn sweep --resume` on the merged directory runs the missing ones.");
  sub->add_option("DIR", o->dirs, "run directories of the shards")->required();
  sub->add_option("--out", o->out, "base directory of the merged run")
      ->capture_default_str()
      ->check(non_empty());
  sub->add_option("--dir", o->dir,
                  "write the merged run to exactly this directory (new or empty) instead")
      ->check(non_empty());
  sub->add_flag("--no-report", o->no_report, "do not write results.csv and table.md");
  return {sub, [o] { run(*o); }};
}

}  // namespace spattn::cli
