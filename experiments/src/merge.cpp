// Merging shard run directories (see merge.hpp).
#include "spattn/experiments/merge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/experiments/meta.hpp"
#include "spattn/experiments/results.hpp"
#include "spattn/experiments/sweep.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::experiments {
namespace {

namespace fs = std::filesystem;

struct Input {
  fs::path dir;
  nlohmann::json header;  // the raw header record
  SweepHeader parsed;
  std::vector<Measurement> points;  // a later record of a key replaces an earlier one
  std::vector<nlohmann::json> budgets;
};

Input read_input(const fs::path& dir) {
  Input in;
  in.dir = dir;
  in.parsed = read_sweep_header(dir);  // UsageError for a directory that is not a run
  const fs::path file = dir / "results.jsonl";
  const JsonLines lines = read_json_lines(file);
  in.header = lines.records.front();
  std::map<std::string, std::size_t> at;
  for (std::size_t k = 1; k < lines.records.size(); ++k) {
    const nlohmann::json& r = lines.records[k];
    const std::string kind = r.value("kind", "");
    if (kind == "budget") in.budgets.push_back(r);
    if (kind != "point") continue;
    Measurement m =
        measurement_from_json(r, fmt::format("{} line {}", file.string(), lines.line_numbers[k]));
    const auto [it, fresh] = at.emplace(m.key, in.points.size());
    if (fresh)
      in.points.push_back(std::move(m));
    else
      in.points[it->second] = std::move(m);
  }
  return in;
}

// The header without what differs between shards of one run.
nlohmann::json comparable(nlohmann::json h) {
  for (const char* k : {"stamp", "shard", "merged_from"}) h.erase(k);
  return h;
}

void check_same_run(const Input& a, const Input& b) {
  const nlohmann::json x = comparable(a.header), y = comparable(b.header);
  if (x == y) return;
  std::string field = "?";
  for (auto it = x.begin(); it != x.end(); ++it)
    if (!y.contains(it.key()) || y[it.key()] != it.value()) {
      field = it.key();
      break;
    }
  if (field == "?")
    for (auto it = y.begin(); it != y.end(); ++it)
      if (!x.contains(it.key())) field = it.key();
  throw UsageError(fmt::format(
      "{} and {} are not parts of one sweep: their headers differ in '{}' (shards to merge must "
      "come from the same experiment text, --quick and overrides)",
      a.dir.string(), b.dir.string(), field));
}

nlohmann::json read_meta(const fs::path& dir) {
  std::ifstream in(dir / "meta.json");
  if (!in) return nlohmann::json::object();
  nlohmann::json m = nlohmann::json::parse(in, nullptr, false);
  return m.is_discarded() || !m.is_object() ? nlohmann::json::object() : m;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void check_shards(const std::vector<Input>& inputs, MergeSummary& s) {
  std::map<int, int> held;
  for (const Input& in : inputs) {
    if (!in.parsed.shard) continue;
    if (s.shard_count == 0) s.shard_count = in.parsed.shard->count;
    if (in.parsed.shard->count != s.shard_count)
      throw UsageError(
          fmt::format("{} is shard {} but another input is a shard of {}: merge "
                      "the shards of one partition",
                      in.dir.string(), in.parsed.shard->text(), s.shard_count));
    ++held[in.parsed.shard->index];
  }
  for (int i = 1; i <= s.shard_count; ++i) {
    if (held[i] == 0) s.missing_shards.push_back(i);
    if (held[i] > 1) s.repeated_shards.push_back(i);
  }
}

}  // namespace

MergeSummary merge_runs(const MergeOptions& o) {
  if (o.inputs.empty()) throw UsageError("spattn merge: give the run directories to merge");
  std::vector<Input> inputs;
  std::set<std::string> seen_dirs;
  for (const fs::path& d : o.inputs) {
    const std::string canon = fs::weakly_canonical(d).string();
    if (!seen_dirs.insert(canon).second)
      throw UsageError(fmt::format("spattn merge: {} is given twice", d.string()));
    inputs.push_back(read_input(d));
    check_same_run(inputs.front(), inputs.back());
  }
  MergeSummary s;
  check_shards(inputs, s);

  const Input& first = inputs.front();
  const Experiment e =
      parse_recorded_experiment(first.parsed.experiment_toml,
                                fmt::format("{} (header)", (first.dir / "results.jsonl").string()));
  std::vector<std::string> order;  // expected keys in point order
  std::map<std::string, int> index_of;
  for (const SweepPoint& p : sweep_points(e, first.parsed.quick, first.parsed.overrides))
    if (index_of.emplace(p.key, static_cast<int>(order.size())).second) order.push_back(p.key);
  s.expected = static_cast<int>(order.size());

  // The chosen record of each key, and the keys in the order they were first seen.
  std::map<std::string, Measurement> chosen;
  std::vector<std::string> seen_order;
  std::set<std::string> dup;
  for (const Input& in : inputs)
    for (const Measurement& m : in.points) {
      const auto it = chosen.find(m.key);
      if (it == chosen.end()) {
        chosen.emplace(m.key, m);
        seen_order.push_back(m.key);
        continue;
      }
      if (dup.insert(m.key).second) s.duplicates.push_back(m.key);
      if (it->second.status != Status::Ok && m.status == Status::Ok) it->second = m;
    }
  for (const std::string& k : order)
    if (chosen.count(k) == 0) s.missing.push_back(k);
  for (const std::string& k : seen_order)
    if (index_of.count(k) == 0) s.unexpected.push_back(k);

  // The merged directory and its header.
  std::string stamp;
  if (o.dir.empty()) {
    s.dir = create_run_dir(o.out_base, first.parsed.experiment, stamp);
  } else {
    s.dir = o.dir;
    std::error_code ec;
    if (fs::exists(s.dir) && !fs::is_empty(s.dir, ec))
      throw UsageError(fmt::format("spattn merge --dir {}: the directory exists and is not empty",
                                   s.dir.string()));
    fs::create_directories(s.dir);
    stamp = first.parsed.stamp;
  }
  nlohmann::json header = first.header;
  header.erase("shard");
  header["stamp"] = stamp;
  header["merged_from"] = nlohmann::json::array();
  for (const Input& in : inputs) {
    nlohmann::json from = {{"dir", fs::absolute(in.dir).lexically_normal().string()},
                           {"stamp", in.parsed.stamp}};
    if (in.parsed.shard) from["shard"] = in.parsed.shard->text();
    header["merged_from"].push_back(from);
  }
  ResultsWriter writer(s.dir / "results.jsonl");
  writer.append(header);
  for (const std::string& k : order)
    if (const auto it = chosen.find(k); it != chosen.end()) {
      writer.append_ordered(to_json(it->second));
      ++s.written;
    }
  for (const std::string& k : s.unexpected) {
    writer.append_ordered(to_json(chosen.at(k)));
    ++s.written;
  }
  std::set<std::string> budget_patterns;
  for (const Input& in : inputs)
    for (const nlohmann::json& b : in.budgets)
      if (budget_patterns.insert(b.value("pattern", "")).second) writer.append(b);

  nlohmann::json meta = read_meta(first.dir);
  meta["merged_from"] = nlohmann::json::array();
  for (const Input& in : inputs) {
    const nlohmann::json m = read_meta(in.dir);
    meta["merged_from"].push_back({{"dir", fs::absolute(in.dir).lexically_normal().string()},
                                   {"host", m.value("host", "")},
                                   {"start_time", m.value("start_time", "")},
                                   {"command_line", m.value("command_line", nlohmann::json())}});
  }
  meta["merge"] = {{"start_time", utc_now()}, {"command_line", o.command_line}};
  write_meta(s.dir / "meta.json", meta);
  return s;
}

}  // namespace spattn::experiments
