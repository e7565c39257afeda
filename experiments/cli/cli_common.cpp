#include "cli_common.hpp"

#include <fmt/format.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <utility>

#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/deepspeed_config.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/io/plugins.hpp"

namespace spattn::cli {

CLI::Validator decimal(std::int64_t min, std::int64_t max) {
  return CLI::Validator(
      [min, max](std::string& s) -> std::string {
        const std::string allowed = fmt::format("a decimal integer {}..{}", min, max);
        std::size_t i = s.size() > 0 && s[0] == '-' ? 1 : 0;
        if (i == s.size() || s.size() > 40 ||
            s.find_first_not_of("0123456789", i) != std::string::npos)
          return fmt::format("'{}' is not {}", s.substr(0, 40), allowed);
        while (i + 1 < s.size() && s[i] == '0') ++i;  // "007" -> "7"
        const std::string digits = s.substr(i);
        std::int64_t v = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
        const bool negative = s[0] == '-' && digits != "0";
        if (ec != std::errc() || end != digits.data() + digits.size() ||
            (negative ? -v : v) < min || (negative ? -v : v) > max)
          return fmt::format("{} is out of range: allowed {}", s.substr(0, 40), allowed);
        s = negative ? "-" + digits : digits;
        return "";
      },
      fmt::format("INT in {}..{}", min, max));
}

CLI::Validator tile_size() {
  const CLI::Validator digits = decimal(1, 128);
  return CLI::Validator(
      [digits](std::string& s) -> std::string {
        std::string e = digits(s);
        if (e.empty() && !is_valid_block_size(std::stoi(s)))
          e = fmt::format("{} is not a tile size", s);
        return e.empty() ? e : e + ": use 16, 32, 64 or 128";
      },
      "16|32|64|128");
}

CLI::Validator non_empty() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        return s.empty() ? std::string("is empty: give a value or leave the option out") : "";
      },
      "NOT EMPTY");
}

void GeometryOptions::add_to(CLI::App& app) {
  app.add_option("-n,--n", n, "number of queries (and of keys unless --nk is given)")
      ->required()
      ->transform(decimal(1, kMaxTokens));
  app.add_option("--nk", nk, "number of keys (default: --n); queries align bottom-right")
      ->transform(decimal(1, kMaxTokens));
  app.add_option("--heads", heads, "number of heads")
      ->capture_default_str()
      ->transform(decimal(1, kMaxHeads));
  auto* b = app.add_option("--block", block, "tile size for queries and keys: 16, 32, 64 or 128")
                ->capture_default_str()
                ->transform(tile_size());
  auto* bq =
      app.add_option("--block-q", block_q, "query tile size: 16, 32, 64 or 128 (default: --block)")
          ->transform(tile_size());
  auto* bk =
      app.add_option("--block-k", block_k, "key tile size: 16, 32, 64 or 128 (default: --block)")
          ->transform(tile_size());
  b->excludes(bq)->excludes(bk);
  app.add_option("--threads", threads, "layout build threads (0: all cores)")
      ->capture_default_str()
      ->transform(decimal(0, kMaxThreads));
}

QkInputs read_qk_inputs(const std::string& dir, const Geometry& g) {
  const std::int64_t budget = default_memory_budget();
  experiments::InputFile q =
      experiments::read_input_npy((std::filesystem::path(dir) / "q.npy").string(), budget);
  experiments::InputFile k =
      experiments::read_input_npy((std::filesystem::path(dir) / "k.npy").string(), budget);
  const auto& qs = q.tensor.shape;
  const auto& ks = k.tensor.shape;
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  need(qs[2] == g.nq,
       fmt::format("{} has {} tokens but --n is {}: they must agree", q.path, qs[2], g.nq));
  need(ks[2] == g.nk,
       fmt::format("{} has {} tokens but the keys are {} (--nk, default --n): they must agree",
                   k.path, ks[2], g.nk));
  need(qs[1] == g.heads,
       fmt::format("{} has {} heads but --heads is {}: they must agree", q.path, qs[1], g.heads));
  need(qs[0] == ks[0], fmt::format("{} has batch {} but {} has {}: they must be equal", q.path,
                                   qs[0], k.path, ks[0]));
  need(qs[3] == ks[3], fmt::format("{} has head dim {} but {} has {}: they must be equal", q.path,
                                   qs[3], k.path, ks[3]));
  need(qs[1] % ks[1] == 0,
       fmt::format(
           "{} has {} heads and {} has {}: the query heads must be a multiple of the K/V heads",
           q.path, qs[1], k.path, ks[1]));
  return {std::move(q.tensor), std::move(k.tensor)};
}

Geometry GeometryOptions::geometry() const {
  if (threads < 0) throw UsageError(fmt::format("--threads {} is negative", threads));
  for (auto [name, value] : {std::pair<const char*, int>{"--block", block},
                             {"--block-q", block_q},
                             {"--block-k", block_k}})
    if (value != 0 && !is_valid_block_size(value))
      throw UsageError(fmt::format("{} {} is not allowed: use 16, 32, 64 or 128", name, value));
  Geometry g;
  g.nq = n;
  g.nk = nk == 0 ? n : nk;
  g.heads = heads;
  g.block_q = block_q != 0 ? block_q : block;
  g.block_k = block_k != 0 ? block_k : block;
  g.validate();
  return g;
}

std::string pattern_spec(const std::string& spec, const std::string& deepspeed_config,
                         const Geometry& g) {
  if (!spec.empty() && !deepspeed_config.empty())
    throw UsageError(fmt::format(
        "give either a pattern spec or --from-deepspeed FILE, not both (got '{}' and {})", spec,
        deepspeed_config));
  if (spec.empty() && deepspeed_config.empty())
    throw UsageError(
        "a pattern spec (e.g. 'sliding(1024) | sink(4)') or --from-deepspeed FILE "
        "is required");
  return spec.empty() ? deepspeed_config_spec_from_file(deepspeed_config)
                      : experiments::spec_at(spec, g.nq);
}

BuildOptions GeometryOptions::build_options() const {
  BuildOptions opt;
  opt.threads = threads;
  return opt;
}

std::string path_summary(const experiments::PathFigures& p, const std::string& path) {
  return fmt::format(
      "{}: whole tiles {}, key runs {}, gathered {}, diagonals {} ({} tile rows, {} tiles left "
      "to the diagonals); tile area {}",
      path, p.whole_pairs, p.run_pairs, p.gather_pairs, p.diagonal_pairs, p.diagonal_rows,
      p.skipped_tiles, p.tile_area_pairs);
}

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::string cur;
  for (const char c : all) {
    if (c == '\0') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) args.push_back(cur);
  return args;
}

void load_run_plugins(const std::string& run_dir) {
  std::ifstream in(std::filesystem::path(run_dir) / "meta.json");
  const nlohmann::json meta = nlohmann::json::parse(in, nullptr, false);
  if (meta.is_discarded() || !meta.contains("plugins") || !meta["plugins"].is_array()) return;
  for (const nlohmann::json& p : meta["plugins"])
    if (p.is_string()) load_plugin(p.get<std::string>());
}

}  // namespace spattn::cli
