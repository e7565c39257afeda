#include "cli_common.hpp"

#include <fmt/format.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <utility>

#include "spattn/experiments/experiment.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/deepspeed_config.hpp"
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
