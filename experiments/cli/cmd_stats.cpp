// spattn stats SPEC --n N ... [--json]: what a layout keeps and what it costs to build and hold;
// --json prints the Measurement record (layout figures and the cost model's prediction).
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <string>

#include "cli_common.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/selector.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::cli {
namespace {

struct StatsOptions {
  std::string spec;
  std::string from_deepspeed;  // DeepSpeed config file, instead of `spec`
  GeometryOptions geo;
  int dim = 64;  // head dim of the record's prediction
  bool json = false;
  std::string path = "auto";
  std::string inputs;  // selectors: the directory of q.npy, k.npy and v.npy to select on
};

// The sweep point whose layout `stats` reports: one batch, K/V heads = heads, the prediction's
// head dim --d.
experiments::SweepPoint stats_point(const StatsOptions& o, const Geometry& g) {
  experiments::SweepPoint p;
  p.pattern.spec = pattern_spec(o.spec, o.from_deepspeed, g);
  p.pattern.name = o.spec.empty() ? p.pattern.spec : o.spec;
  p.n = g.nq;
  p.nk = g.nk;
  p.head_dim = o.dim;
  p.heads = p.kv_heads = g.heads;
  p.threads = o.geo.threads;
  p.block = g.block_q;
  p.block_k = g.block_k;
  p.path = parse_execution_path(o.path);
  if (!o.inputs.empty()) {  // the sizes the files give; prepare_point selects on them
    const QkInputs in = read_qk_inputs(o.inputs, g);
    p.batch = static_cast<int>(in.q.shape[0]);
    p.kv_heads = static_cast<int>(in.k.shape[1]);
    p.head_dim = static_cast<int>(in.q.shape[3]);
    p.settings.inputs = {"npy", o.inputs};
  }
  p.key = experiments::point_key(p);
  return p;
}

void run_stats(const StatsOptions& o) {
  const Geometry g = o.geo.geometry();
  const experiments::SweepPoint point = stats_point(o, g);
  // A selector's layout depends on Q and K: without --inputs there is nothing to select on.
  if (o.inputs.empty() && parse_spec(point.pattern.spec)->needs_inputs())
    throw UsageError(no_inputs_message(point.pattern.spec));
  const experiments::PreparedPoint u = experiments::prepare_point(point);
  const Layout& layout = u.layout;
  if (o.json) {  // the Measurement record, one line; no attention was run
    experiments::Measurement m = experiments::point_record(u.point);
    m.source = "stats";
    m.layout = u.figures;
    m.predicted = u.prediction;
    m.selection = u.selection;
    std::cout << experiments::to_json(m).dump() << "\n";
    return;
  }
  const LayoutCounts c = layout.counts();
  // heads * nq * nk can exceed int64 at the largest sizes: the density is computed in double.
  const double all_pairs =
      static_cast<double>(g.heads) * static_cast<double>(g.nq) * static_cast<double>(g.nk);
  const double density = static_cast<double>(c.allowed_pairs) / all_pairs;
  const experiments::LayoutFigures& f = u.figures;
  const bool has_efficiency = f.computed_pairs > 0;
  const double efficiency =
      has_efficiency ? static_cast<double>(f.allowed_pairs) / static_cast<double>(f.computed_pairs)
                     : 0.0;
  const double build_ms = layout.build_seconds * 1e3;
  const std::string build =
      layout.scanned
          ? fmt::format("scanned (pattern {} implements only allows)", layout.scanned_part)
          : "analytic";
  std::string t;
  auto line = [&t](const char* name, const std::string& value) {
    t += fmt::format("{:<22} {}\n", name, value);
  };
  line("spec", layout.spec);
  line("geometry", g.describe());
  if (u.selection)
    line("selection",
         fmt::format("{:.3f} ms  (select_ms, {} batch{}; counts below: batch 0)",
                     u.selection->select_ms, u.point.batch, u.point.batch == 1 ? "" : "es"));
  line("allowed pairs", fmt::format("{}", c.allowed_pairs));
  line("density", fmt::format("{:.6g}  (allowed / (heads * nq * nk))", density));
  line("kept tiles",
       fmt::format("{}  ({} full, {} partial)", c.kept_tiles, c.full_tiles, c.partial_tiles));
  line("tile area", fmt::format("{}  (pairs of the kept tiles, per head)", c.computed_pairs));
  line("computed pairs", fmt::format("{}  (what the executor's paths evaluate, all {} heads)",
                                     f.computed_pairs, g.heads));
  if (f.paths)
    line("paths", path_summary(*f.paths, std::string(execution_path_name(u.point.path))));
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
  sub->add_option("--d,--head-dim", o->dim,
                  "head dim of the --json record's cost prediction, 1..256")
      ->capture_default_str()
      ->transform(decimal(1, 256));
  sub->add_option("--inputs", o->inputs,
                  "selectors: directory of q.npy, k.npy and v.npy (as `run --inputs`) to select "
                  "on; their sizes must agree with --n, --nk and --heads")
      ->check(non_empty());
  sub->add_option("--path", o->path,
                  "execution path whose plan the computed pairs follow: " + execution_path_names())
      ->capture_default_str();
  sub->add_flag("--json", o->json,
                "print the measurement record (one JSON line, experiments/README.md) instead of a "
                "table");
  return {sub, [o] { run_stats(*o); }};
}

}  // namespace spattn::cli
