// spattn stats SPEC --n N ... [--json]: what a layout keeps and what it costs to build and hold.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_common.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::cli {
namespace {

struct StatsOptions {
  std::string spec;
  std::string from_deepspeed;  // DeepSpeed config file, instead of `spec`
  GeometryOptions geo;
  bool json = false;
};

void run_stats(const StatsOptions& o) {
  const Geometry g = o.geo.geometry();
  const PatternPtr pattern = parse_spec(pattern_spec(o.spec, o.from_deepspeed));
  const Layout layout = build_layout(*pattern, g, o.geo.build_options());
  const LayoutCounts c = layout.counts();
  // heads * nq * nk can exceed int64 at the largest sizes: the density is computed in double.
  const double all_pairs =
      static_cast<double>(g.heads) * static_cast<double>(g.nq) * static_cast<double>(g.nk);
  const double density = static_cast<double>(c.allowed_pairs) / all_pairs;
  const bool has_efficiency = c.computed_pairs > 0;
  const double efficiency =
      has_efficiency ? static_cast<double>(c.allowed_pairs) / static_cast<double>(c.computed_pairs)
                     : 0.0;
  const double build_ms = layout.build_seconds * 1e3;
  const std::string build =
      layout.scanned
          ? fmt::format("scanned (pattern {} implements only allows)", layout.scanned_part)
          : "analytic";

  if (o.json) {
    const nlohmann::ordered_json out = {
        {"spec", layout.spec},
        {"nq", g.nq},
        {"nk", g.nk},
        {"heads", g.heads},
        {"block_q", g.block_q},
        {"block_k", g.block_k},
        {"allowed_pairs", c.allowed_pairs},
        {"density", density},
        {"kept_tiles", c.kept_tiles},
        {"full_tiles", c.full_tiles},
        {"partial_tiles", c.partial_tiles},
        {"computed_pairs", c.computed_pairs},
        {"efficiency", has_efficiency ? nlohmann::ordered_json(efficiency) : nullptr},
        {"layout_bytes", c.bytes},
        {"build_ms", build_ms},
        {"threads", o.geo.threads},
        {"distinct_head_layouts", layout.distinct.size()},
        {"build", layout.scanned ? "scanned" : "analytic"},
        {"scanned_part", layout.scanned ? nlohmann::ordered_json(layout.scanned_part) : nullptr}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::string t;
  auto line = [&t](const char* name, const std::string& value) {
    t += fmt::format("{:<22} {}\n", name, value);
  };
  line("spec", layout.spec);
  line("geometry", g.describe());
  line("allowed pairs", fmt::format("{}", c.allowed_pairs));
  line("density", fmt::format("{:.6g}  (allowed / (heads * nq * nk))", density));
  line("kept tiles",
       fmt::format("{}  ({} full, {} partial)", c.kept_tiles, c.full_tiles, c.partial_tiles));
  line("computed pairs", fmt::format("{}  (area of kept tiles)", c.computed_pairs));
  line("efficiency", has_efficiency ? fmt::format("{:.6g}  (allowed / computed)", efficiency)
                                    : std::string("n/a (no tile kept)"));
  line("layout bytes", fmt::format("{}", c.bytes));
  line("build time", fmt::format("{:.3f} ms  (threads: {})", build_ms,
                                 o.geo.threads == 0 ? std::string("all cores")
                                                    : fmt::format("{}", o.geo.threads)));
  line("distinct head layouts", fmt::format("{} of {} heads", layout.distinct.size(), g.heads));
  line("build", build);
  std::cout << t;
}

}  // namespace

Command add_stats_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "stats",
      "Build a pattern's layout and report pairs, density, tiles, efficiency, bytes, time");
  auto o = std::make_shared<StatsOptions>();
  sub->add_option("spec", o->spec, "pattern spec string, e.g. 'sliding(1024) | sink(4)'");
  sub->add_option("--from-deepspeed", o->from_deepspeed,
                  "DeepSpeed config JSON (whole config or its sparse_attention section) to use "
                  "instead of a spec: its ds_* equivalent (shown as the spec)")
      ->check(non_empty());
  o->geo.add_to(*sub);
  sub->add_flag("--json", o->json, "print JSON instead of a table");
  return {sub, [o] { run_stats(*o); }};
}

}  // namespace spattn::cli
