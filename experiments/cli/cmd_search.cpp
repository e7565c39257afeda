// spattn search --inputs DIR --candidate SPEC [--candidate SPEC ...]: scores each candidate per
// head by attention-mass recall on calibration inputs (q.npy, k.npy) and prints the winners as
// one heads(...) spec; --out FILE writes them as JSON.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "spattn/attention/select/search.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"

namespace spattn::cli {
namespace {

struct SearchOptions {
  std::string inputs;
  std::vector<std::string> candidates;
  std::int64_t min_query = 0;
  double max_density = 1.0;
  int block = 64;
  std::string out;
  bool json = false;
};

void run_search(const SearchOptions& o) {
  // The geometry comes from the files: nq and Hq from q.npy, nk from k.npy.
  experiments::InputFile qf =
      experiments::read_input_npy(o.inputs + "/q.npy", default_memory_budget());
  experiments::InputFile kf =
      experiments::read_input_npy(o.inputs + "/k.npy", default_memory_budget());
  Geometry g;
  g.nq = qf.tensor.shape[2];
  g.nk = kf.tensor.shape[2];
  g.heads = static_cast<int>(qf.tensor.shape[1]);
  g.block_q = g.block_k = o.block;
  g.validate();
  const QkInputs in = read_qk_inputs(o.inputs, g);
  if (!(o.max_density > 0 && o.max_density <= 1))
    throw UsageError(
        fmt::format("--max-density {} is out of range: allowed (0, 1]", o.max_density));
  const SearchResult r =
      search_heads(o.candidates, in.q.view(), in.k.view(), g, o.min_query, o.max_density);
  nlohmann::ordered_json j;
  j["heads_spec"] = r.heads_spec;
  j["inputs"] = o.inputs;
  j["min_query"] = o.min_query;
  j["max_density"] = o.max_density;
  j["heads"] = nlohmann::ordered_json::array();
  std::string table = fmt::format("{:<6} {:<8} {:<9} {}\n", "head", "recall", "density", "spec");
  for (std::size_t h = 0; h < r.heads.size(); ++h) {
    const HeadSearch& hs = r.heads[h];
    nlohmann::ordered_json cands = nlohmann::ordered_json::array();
    for (std::size_t c = 0; c < hs.candidates.size(); ++c) {
      const CandidateScore& s = hs.candidates[c];
      cands.push_back({{"spec", s.spec}, {"recall", s.recall}, {"density", s.density}});
      table += fmt::format("{:<6} {:<8.4f} {:<9.4f} {}{}\n", h, s.recall, s.density, s.spec,
                           static_cast<int>(c) == hs.best ? "   <- chosen" : "");
    }
    const CandidateScore& w = hs.candidates[static_cast<std::size_t>(hs.best)];
    j["heads"].push_back({{"head", h},
                          {"spec", w.spec},
                          {"recall", w.recall},
                          {"density", w.density},
                          {"candidates", cands}});
  }
  if (!o.out.empty()) {
    std::ofstream f(o.out);
    if (!f) throw Error(fmt::format("{}: cannot create file", o.out));
    f << j.dump(2) << "\n";
    if (!f.flush()) throw Error(fmt::format("{}: write failed", o.out));
  }
  if (o.json) {
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << table << fmt::format("\nper-head spec: {}\n", r.heads_spec);
  if (!o.out.empty()) std::cout << fmt::format("wrote {}\n", o.out);
}

}  // namespace

Command add_search_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "search",
      "Choose a spec per head: score candidates by attention-mass recall on calibration inputs");
  auto o = std::make_shared<SearchOptions>();
  sub->add_option("--inputs", o->inputs, "directory of q.npy and k.npy (calibration inputs)")
      ->required()
      ->check(non_empty());
  sub->add_option("--candidate", o->candidates,
                  "a candidate spec (repeat the option; selectors and static patterns alike)")
      ->required();
  sub->add_option("--min-query", o->min_query,
                  "score only queries i >= this (MInference scores i >= 2500)")
      ->capture_default_str()
      ->transform(decimal(0, kMaxTokens));
  sub->add_option("--max-density", o->max_density,
                  "density budget: only candidates with allowed / (nq nk) <= this compete")
      ->capture_default_str();
  sub->add_option("--block", o->block, "tile size of the candidates' layouts")
      ->capture_default_str()
      ->transform(tile_size());
  sub->add_option("--out", o->out, "write the result as JSON to this file")->check(non_empty());
  sub->add_flag("--json", o->json, "print the JSON instead of the table");
  return {sub, [o] { run_search(*o); }};
}

}  // namespace spattn::cli
