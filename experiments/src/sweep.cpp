// The sweep driver (see sweep.hpp). The parent predicts each point and records it; the point
// itself runs in a child so that a crash, a hang or an exhausted address space costs only that
// point.
#include "spattn/experiments/sweep.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <fstream>
#include <new>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string_view>

#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/experiments/meta.hpp"
#include "spattn/experiments/process.hpp"
#include "spattn/experiments/results.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"

namespace spattn::experiments {
namespace {

namespace fs = std::filesystem;

std::string utc_time(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

// "mm:ss", or "h:mm:ss" from an hour on.
std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, seconds) + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

// The last `max_lines` non-empty lines of a child's stderr, joined with " | ".
std::string stderr_tail(const std::string& err, int max_lines = 5) {
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  std::string out;
  const std::size_t first = lines.size() > static_cast<std::size_t>(max_lines)
                                ? lines.size() - static_cast<std::size_t>(max_lines)
                                : 0;
  for (std::size_t i = first; i < lines.size(); ++i) {
    if (!out.empty()) out += " | ";
    out += lines[i];
  }
  if (out.size() > 2000) out = "..." + out.substr(out.size() - 2000);
  return out;
}

// A point's record before it runs: key, index and axes; the layout's counts and the prediction
// when the point could be prepared; the status and message when it will not run.
struct Planned {
  SweepPoint point;
  Measurement record;
  bool run = false;         // run it in a child
  bool bad_inputs = false;  // its npy inputs cannot serve it (the sweep refuses to start)
};

Planned plan_point(const SweepPoint& p) {
  Planned plan{p, point_record(p), false};
  Measurement& m = plan.record;
  auto refuse = [&](Status status, std::string message) {
    m.status = status;
    m.message = std::move(message);
    return plan;
  };
  try {
    const PreparedPoint u = prepare_point(p);
    m.layout = u.figures;
    m.predicted = u.prediction;
  } catch (const BudgetError& e) {
    return refuse(Status::Skipped, e.what());
  } catch (const std::bad_alloc&) {
    return refuse(Status::Skipped, "predicting the point ran out of memory (std::bad_alloc)");
  } catch (const std::exception& e) {  // UsageError and anything else the prediction refuses
    if (p.settings.inputs.kind == "npy") {
      try {  // the same check prepare_point made: did the inputs fail, or something else?
        AttentionShape s;
        s.batch = p.batch;
        s.q_heads = p.heads;
        s.kv_heads = p.kv_heads == 0 ? p.heads : p.kv_heads;
        s.nq = p.n;
        s.nk = p.nk > 0 ? p.nk : p.n;
        s.dim = p.head_dim;
        s.dim_v = p.head_dim_v > 0 ? p.head_dim_v : p.head_dim;
        (void)check_npy_inputs(p.settings.inputs, s);
      } catch (const UsageError&) {
        plan.bad_inputs = true;
      }
    }
    return refuse(Status::Error, e.what());
  }
  const std::int64_t limit = memory_limit(p.settings);
  if (m.predicted->memory_bytes > limit)
    return refuse(Status::Skipped,
                  fmt::format("predicted memory {} exceeds the point's memory limit {}",
                              format_bytes(m.predicted->memory_bytes), format_bytes(limit)));
  if (p.settings.timeout_seconds > 0 && m.predicted->seconds > p.settings.timeout_seconds)
    return refuse(Status::Skipped,
                  fmt::format("predicted time {:.3g} s exceeds the point's timeout {:.3g} s",
                              m.predicted->seconds, p.settings.timeout_seconds));
  plan.run = true;
  return plan;
}

// The child's record: the last non-empty line of its stdout, a Measurement; nullopt and `why`
// when there is none.
std::optional<Measurement> child_record(const std::string& out, std::string& why) {
  std::string last;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  const nlohmann::json j = nlohmann::json::parse(last, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    why = "the worker exited with 0 but printed no JSON object on stdout";
    return std::nullopt;
  }
  try {
    return measurement_from_json(j, "the worker's record");
  } catch (const UsageError& e) {
    why = e.what();
    return std::nullopt;
  }
}

// Runs a planned point in a child and fills `record` (status, message, the child's measurement,
// its wall time and peak RSS). Returns false when the sweep was interrupted while it ran
// (nothing to record).
bool run_planned(const Planned& plan, const fs::path& point_file, const std::string& worker,
                 Measurement& record) {
  {
    std::ofstream out(point_file, std::ios::trunc);
    out << point_to_json(plan.point).dump() << '\n';
    if (!out.flush()) throw std::runtime_error(fmt::format("cannot write {}", point_file.string()));
  }
  ChildOptions child;
  child.argv = {worker, "point", point_file.string()};
  child.address_space_bytes = memory_limit(plan.point.settings);
  child.timeout_seconds = plan.point.settings.timeout_seconds;
  const ChildResult r = run_child(child);
  if (r.end == ChildResult::End::Interrupted) return false;
  const std::string tail = stderr_tail(r.err);
  auto with_tail = [&](std::string text) {
    return tail.empty() ? text : fmt::format("{}; stderr: {}", text, tail);
  };
  switch (r.end) {
    case ChildResult::End::TimedOut:
      record.status = Status::Timeout;
      record.message = fmt::format("killed after the timeout of {} s", child.timeout_seconds);
      break;
    case ChildResult::End::Signaled:
      record.status = Status::Crashed;
      record.message = with_tail(
          fmt::format("killed by {}{}", signal_description(r.signal),
                      r.signal == SIGKILL ? " (possibly the kernel's out-of-memory killer)" : ""));
      break;
    default:
      if (r.exit_code == 0) {
        std::string why;
        if (std::optional<Measurement> m = child_record(r.out, why)) {
          record = std::move(*m);
          record.source = "sweep";
          record.key = plan.point.key;  // the parent's identity of the point: resume matches on it
          record.index = plan.point.index;
          record.status = Status::Ok;
          record.message = "";
        } else {
          record.status = Status::Error;
          record.message = with_tail(why);
        }
      } else if (r.exit_code == 3) {
        record.status = Status::Oom;
        record.message = tail.empty() ? "out of memory (exit code 3)" : tail;
      } else {
        record.status = Status::Error;
        record.message =
            r.exit_code == 1 || r.exit_code == 2
                ? (tail.empty() ? fmt::format("exit code {}", r.exit_code) : tail)
                : with_tail(fmt::format("the worker exited with code {}", r.exit_code));
      }
  }
  // The child's figures as the parent saw them (its whole run, all its threads).
  record.resources.peak_rss_bytes = r.peak_rss_bytes;
  record.resources.wall_seconds = r.wall_seconds;
  return true;
}

// Progress: a line per point, or on a terminal one line rewritten in place.
class Progress {
 public:
  Progress(std::ostream* out, bool tty) : out_(out), tty_(tty) {}
  void status(const std::string& line) {
    if (out_ == nullptr) return;
    if (tty_) *out_ << "\r\033[K" << line << std::flush;
  }
  void note(const std::string& line) {
    if (out_ == nullptr) return;
    if (tty_) *out_ << "\r\033[K";
    *out_ << line << '\n' << std::flush;
  }
  void finish() {
    if (out_ != nullptr && tty_) *out_ << "\r\033[K" << std::flush;
  }

 private:
  std::ostream* out_;
  bool tty_;
};

std::string point_label(const SweepPoint& p) {
  std::string s = fmt::format("{} n={}", p.pattern.name, p.n);
  if (p.head_dim != 64) s += fmt::format(" d={}", p.head_dim);
  if (p.head_dim_v > 0 && p.head_dim_v != p.head_dim) s += fmt::format(" dv={}", p.head_dim_v);
  return s;
}

void print_dry_run(const std::vector<Planned>& plans, const std::set<std::string>& done,
                   std::ostream& out) {
  out << fmt::format(
      "{:>4}  {:<28} {:>9} {:>4} {:>3} {:>3} {:>3} {:>5} {:>16} {:>10} {:>10} "
      "{:>9}  {}\n",
      "#", "pattern", "n", "d", "H", "B", "T", "block", "allowed_pairs", "GFLOP", "memory",
      "seconds", "action");
  int run = 0, skipped = 0;
  for (const Planned& plan : plans) {
    const SweepPoint& p = plan.point;
    std::string pairs = "-", gflop = "-", memory = "-", seconds = "-";
    if (const auto& q = plan.record.predicted) {
      pairs = std::to_string(plan.record.layout->allowed_pairs);
      gflop = fmt::format("{:.3f}", q->computed_flops / 1e9);
      memory = format_bytes(q->memory_bytes);
      seconds = fmt::format("{:.4g}", q->seconds);
    }
    std::string action;
    if (done.count(p.key) != 0) {
      action = "done";
    } else if (plan.run) {
      action = "run";
      ++run;
    } else {
      action = fmt::format("{}: {}", status_name(plan.record.status), plan.record.message);
      ++skipped;
    }
    std::string name = p.pattern.name;
    if (name.size() > 28) name = name.substr(0, 25) + "...";
    out << fmt::format(
        "{:>4}  {:<28} {:>9} {:>4} {:>3} {:>3} {:>3} {:>5} {:>16} {:>10} {:>10} "
        "{:>9}  {}\n",
        p.index, name, p.n, p.head_dim, p.heads, p.batch, p.threads, p.block, pairs, gflop, memory,
        seconds, action);
  }
  out << fmt::format("{} points: {} would run, {} would not, {} already recorded\n", plans.size(),
                     run, skipped, plans.size() - static_cast<std::size_t>(run + skipped));
}

// The largest power-of-two n (from 1024 up to 2^24) whose predicted memory fits `budget`, for
// the pattern `entry` (its spec placeholders filled per n, as expand_points does) with the other
// axes of `templ`; `settings` are the sweep's settings before their per-n filling.
nlohmann::json budget_record(SweepPoint templ, const PatternEntry& entry, const Settings& settings,
                             std::int64_t budget) {
  std::int64_t max_n = 0, memory_at_max = 0;
  for (std::int64_t n = 1024; n <= (std::int64_t{1} << 24) && interrupt_signal() == 0; n *= 2) {
    Prediction q;
    try {
      templ.n = n;
      templ.pattern = entry;
      templ.pattern.spec = spec_at(entry.spec, n);
      templ.pattern.fidelity_baseline = spec_at(entry.fidelity_baseline, n);
      templ.pattern.min_n = templ.pattern.max_n = 0;
      templ.settings = settings;
      templ.settings.fidelity_baseline = spec_at(settings.fidelity_baseline, n);
      templ.settings.memory_bytes = budget;
      q = predict_point(templ);
    } catch (const std::exception&) {  // refused (BudgetError), or not valid at this n
      break;
    }
    if (q.memory_bytes > budget) break;
    max_n = n;
    memory_at_max = q.memory_bytes;
  }
  return {{"kind", "budget"},   {"pattern", entry.name},
          {"spec", entry.spec}, {"budget_bytes", budget},
          {"max_n", max_n},     {"memory_bytes_at_max_n", memory_at_max}};
}

void note_resume_in_meta(const fs::path& meta_path, const std::vector<std::string>& command_line,
                         const std::string& start_time) {
  nlohmann::json meta = nlohmann::json::object();
  {
    std::ifstream in(meta_path);
    if (in) {
      meta = nlohmann::json::parse(in, nullptr, false);
      if (meta.is_discarded() || !meta.is_object()) meta = nlohmann::json::object();
    }
  }
  meta["resumed"].push_back({{"start_time", start_time}, {"command_line", command_line}});
  write_meta(meta_path, meta);
}

// The overrides applied to a point; its key follows (threads is an axis).
void apply_overrides(SweepPoint& p, const SweepOverrides& o) {
  if (o.repeats) p.settings.repeats = *o.repeats;
  if (o.warmup) p.settings.warmup = *o.warmup;
  if (o.threads) {
    p.threads = *o.threads;
    p.key = point_key(p);
  }
}

// The shard of each plan (its predicted seconds when it runs, else 0).
std::vector<int> shards_of(const std::vector<Planned>& plans, int count) {
  std::vector<ShardItem> items;
  for (const Planned& plan : plans)
    items.push_back({plan.point.key, plan.run ? plan.record.predicted->seconds : 0.0});
  return assign_shards(items, count);
}

// Keeps the plans of `shard` (and, unless listing them, only those not done yet); the summary's
// total and already_done then count that shard's points.
void keep_shard(std::vector<Planned>& plans, const ShardSpec& shard,
                const std::set<std::string>& done, bool dry_run, SweepSummary& summary) {
  const std::vector<int> of = shards_of(plans, shard.count);
  std::vector<Planned> mine;
  summary.total = summary.already_done = 0;
  for (std::size_t k = 0; k < plans.size(); ++k) {
    if (of[k] != shard.index) continue;
    ++summary.total;
    const bool is_done = done.count(plans[k].point.key) != 0;
    summary.already_done += is_done ? 1 : 0;
    if (!is_done || dry_run) mine.push_back(std::move(plans[k]));
  }
  plans = std::move(mine);
}

nlohmann::json shard_to_json(const ShardSpec& s) {
  return {{"index", s.index}, {"count", s.count}};
}

}  // namespace

nlohmann::json SweepOverrides::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (repeats) j["repeats"] = *repeats;
  if (warmup) j["warmup"] = *warmup;
  if (threads) j["threads"] = *threads;
  return j;
}

SweepOverrides SweepOverrides::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object())
    throw UsageError(
        fmt::format("{}: 'overrides' must be an object, found {}", where, j.dump().substr(0, 60)));
  SweepOverrides o;
  const std::pair<const char*, std::pair<int, int>> fields[] = {
      {"repeats", {1, 100000}}, {"warmup", {0, 100000}}, {"threads", {0, 1024}}};
  for (const auto& [name, range] : fields) {
    const auto it = j.find(name);
    if (it == j.end()) continue;
    if (!it->is_number_integer() || it->get<std::int64_t>() < range.first ||
        it->get<std::int64_t>() > range.second)
      throw UsageError(fmt::format("{}: overrides.{} must be an integer {}..{}, found {}", where,
                                   name, range.first, range.second, it->dump().substr(0, 60)));
    const int v = it->get<int>();
    (std::string_view(name) == "repeats"  ? o.repeats
     : std::string_view(name) == "warmup" ? o.warmup
                                          : o.threads) = v;
  }
  return o;
}

std::vector<SweepPoint> sweep_points(const Experiment& e, bool quick,
                                     const SweepOverrides& overrides) {
  std::vector<SweepPoint> points = expand_points(e, quick);
  for (SweepPoint& p : points) apply_overrides(p, overrides);
  return points;
}

std::vector<ShardedPoint> shard_points(const Experiment& e, bool quick,
                                       const SweepOverrides& overrides, int count) {
  std::vector<Planned> plans;
  std::set<std::string> seen;
  for (const SweepPoint& p : sweep_points(e, quick, overrides))
    if (seen.insert(p.key).second) plans.push_back(plan_point(p));
  const std::vector<int> of = shards_of(plans, count);
  std::vector<ShardedPoint> out;
  for (std::size_t k = 0; k < plans.size(); ++k)
    out.push_back({plans[k].point, plans[k].run,
                   plans[k].run ? plans[k].record.predicted->seconds : 0.0, of[k]});
  return out;
}

fs::path create_run_dir(const fs::path& base, const std::string& name, std::string& stamp) {
  const std::string now = utc_time("%Y%m%d-%H%M%S");
  const fs::path parent = base / name;
  fs::create_directories(parent);
  for (int k = 1;; ++k) {
    stamp = k == 1 ? now : fmt::format("{}-{}", now, k);
    if (fs::create_directory(parent / stamp)) return parent / stamp;  // false: taken this second
  }
}

SweepHeader read_sweep_header(const fs::path& dir) {
  const fs::path file = dir / "results.jsonl";
  if (!fs::is_regular_file(file))
    throw UsageError(
        fmt::format("{} is not a sweep run directory: it has no results.jsonl", dir.string()));
  const JsonLines f = read_json_lines(file);
  if (f.records.empty() || f.records.front().value("kind", "") != "header" ||
      !f.records.front().contains("experiment"))
    throw UsageError(fmt::format("{} does not start with a header record", file.string()));
  const nlohmann::json& h = f.records.front();
  // A hand-edited header: each field named with what it must be.
  auto field = [&](const char* name, bool (nlohmann::json::*is)() const noexcept,
                   const char* what) -> const nlohmann::json& {
    const auto it = h.find(name);
    if (it == h.end() || !((*it).*is)() || (it->is_string() && it->get<std::string>().empty()))
      throw UsageError(
          fmt::format("{}: line 1 (the header): '{}' must be {}, found {}", file.string(), name,
                      what, it == h.end() ? std::string("nothing") : it->dump().substr(0, 60)));
    return *it;
  };
  SweepHeader header;
  header.experiment =
      field("experiment", &nlohmann::json::is_string, "the experiment's name").get<std::string>();
  header.stamp = h.contains("stamp")
                     ? field("stamp", &nlohmann::json::is_string, "a string").get<std::string>()
                     : std::string();
  header.quick = h.contains("quick")
                     ? field("quick", &nlohmann::json::is_boolean, "true or false").get<bool>()
                     : false;
  header.experiment_toml =
      field("experiment_toml", &nlohmann::json::is_string, "the experiment file's text")
          .get<std::string>();
  if (h.contains("overrides"))
    header.overrides =
        SweepOverrides::from_json(h["overrides"], fmt::format("{}: line 1", file.string()));
  if (h.contains("shard")) {
    const nlohmann::json& s = field("shard", &nlohmann::json::is_object, "{index, count}");
    const nlohmann::json i = s.value("index", nlohmann::json()),
                         n = s.value("count", nlohmann::json());
    if (!i.is_number_integer() || !n.is_number_integer())
      throw UsageError(
          fmt::format("{}: line 1 (the header): 'shard' must be {{\"index\": i, "
                      "\"count\": n}}, found {}",
                      file.string(), s.dump().substr(0, 60)));
    header.shard = parse_shard(fmt::format("{}/{}", i.get<std::int64_t>(), n.get<std::int64_t>()),
                               fmt::format("{}: line 1 (the header): shard", file.string()));
  }
  return header;
}

fs::path latest_run_dir(const fs::path& out_base, const std::string& experiment) {
  const fs::path parent = out_base / experiment;
  std::error_code ec;
  fs::path best;
  for (const fs::directory_entry& d : fs::directory_iterator(parent, ec)) {
    if (!d.is_directory() || !fs::exists(d.path() / "results.jsonl")) continue;
    if (best.empty() || d.path().filename().string() > best.filename().string()) best = d.path();
  }
  return best;
}

SweepSummary run_sweep(const Experiment& e, const SweepOptions& o) {
  InterruptGuard guard;
  Progress progress(o.progress, o.tty);
  SweepSummary summary;
  const std::string start_time = utc_time("%Y-%m-%dT%H:%M:%SZ");

  bool quick = o.quick;
  std::set<std::string> done_points, done_budgets;
  if (!o.resume_dir.empty()) {
    const SweepHeader header = read_sweep_header(o.resume_dir);
    if (header.experiment != e.name)
      throw UsageError(
          fmt::format("{} holds the experiment '{}', not '{}': resume it with its own experiment",
                      o.resume_dir.string(), header.experiment, e.name));
    quick = header.quick;
    if (header.shard != o.shard)
      throw UsageError(fmt::format(
          "{} holds {}, not {}: resume a run with the shard it started with", o.resume_dir.string(),
          header.shard ? "shard " + header.shard->text() : std::string("every point (no shard)"),
          o.shard ? "shard " + o.shard->text() : std::string("every point (no shard)")));
    for (const nlohmann::json& r : read_json_lines(o.resume_dir / "results.jsonl").records) {
      if (r.value("kind", "") == "point") done_points.insert(r.value("key", ""));
      if (r.value("kind", "") == "budget") done_budgets.insert(r.value("pattern", ""));
    }
  }

  const std::vector<SweepPoint> points = sweep_points(e, quick, o.overrides);
  summary.total = static_cast<int>(points.size());
  std::vector<Planned> plans;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (interrupt_signal() != 0) break;
    const SweepPoint& p = points[i];
    if (!seen.insert(p.key).second) continue;  // a repeated key runs (and is recorded) once
    if (done_points.count(p.key) != 0) {
      ++summary.already_done;
      // A shard needs every point's prediction to find its own.
      if (!o.dry_run && !o.shard) continue;
    }
    progress.status(fmt::format("predicting [{}/{}] {}", i + 1, points.size(), point_label(p)));
    plans.push_back(plan_point(p));
  }
  progress.finish();
  if (o.shard && interrupt_signal() == 0)
    keep_shard(plans, *o.shard, done_points, o.dry_run, summary);
  if (o.dry_run) {
    std::ostream* listing = o.listing != nullptr ? o.listing : o.progress;
    if (interrupt_signal() == 0 && listing != nullptr) print_dry_run(plans, done_points, *listing);
    summary.interrupted_by = interrupt_signal();
    return summary;
  }
  if (interrupt_signal() != 0) {
    summary.interrupted_by = interrupt_signal();
    return summary;
  }
  // Inputs that cannot serve a point are a mistake in the experiment, not a measurement: refuse
  // before the first point rather than record every point as an error.
  const auto bad =
      std::find_if(plans.begin(), plans.end(), [](const Planned& x) { return x.bad_inputs; });
  if (bad != plans.end())
    throw UsageError(fmt::format(
        "{} of {} points cannot use their inputs, so nothing was run; the first, point {}: {}. "
        "Fix the files, or keep the patterns to the lengths the capture holds (max_n); "
        "--dry-run lists every point",
        std::count_if(plans.begin(), plans.end(), [](const Planned& x) { return x.bad_inputs; }),
        plans.size(), bad->point.key, bad->record.message));

  // The run directory, its header and meta.json.
  std::optional<ResultsWriter> writer;
  if (o.resume_dir.empty()) {
    std::string stamp;
    summary.dir = create_run_dir(o.out_base, e.name, stamp);
    writer.emplace(summary.dir / "results.jsonl");
    nlohmann::json header = {{"kind", "header"},
                             {"experiment", e.name},
                             {"stamp", stamp},
                             {"quick", quick},
                             {"report",
                              {{"layout", e.report.layout},
                               {"baseline", e.report.baseline},
                               {"budget_bytes", e.report.budget_bytes}}},
                             {"experiment_toml", e.source_text}};
    if (o.overrides.any()) header["overrides"] = o.overrides.to_json();
    if (o.shard) header["shard"] = shard_to_json(*o.shard);
    if (!e.report.published.empty())
      header["report"]["published"] = published_to_json(e.report.published);
    writer->append(header);
    write_meta(summary.dir / "meta.json", build_meta(e, o.command_line, start_time));
  } else {
    summary.dir = o.resume_dir;
    writer.emplace(summary.dir / "results.jsonl");
    note_resume_in_meta(summary.dir / "meta.json", o.command_line, start_time);
  }
  const fs::path point_file = summary.dir / ".point.json";
  const std::string worker = o.worker.empty() ? "/proc/self/exe" : o.worker;

  // Predicted seconds still to run, scaled by how measured time compared with predictions.
  double remaining_predicted = 0, ran_predicted = 0, ran_measured = 0;
  for (const Planned& plan : plans)
    if (plan.run) remaining_predicted += plan.record.predicted->seconds;

  const int n = static_cast<int>(plans.size());
  for (int k = 0; k < n && interrupt_signal() == 0; ++k) {
    const Planned& plan = plans[static_cast<std::size_t>(k)];
    const SweepPoint& p = plan.point;
    const double scale = ran_predicted > 0 ? ran_measured / ran_predicted : 1.0;
    progress.status(
        fmt::format("[{}/{}] {} ETA {}", k + 1, n, point_label(p),
                    ran_predicted > 0 ? format_duration(remaining_predicted * scale) : "--:--"));
    Measurement record = plan.record;
    if (plan.run) {
      if (!run_planned(plan, point_file, worker, record)) break;
      remaining_predicted -= plan.record.predicted->seconds;
      ran_predicted += plan.record.predicted->seconds;
      ran_measured += *record.resources.wall_seconds;
    }
    writer->append_ordered(to_json(record));
    ++summary.recorded;
    const std::string status(status_name(record.status));
    ++summary.by_status[status];
    const std::string line = fmt::format(
        "[{}/{}] {}: {}{}", k + 1, n, point_label(p), status,
        record.resources.wall_seconds ? fmt::format(" ({:.2f} s)", *record.resources.wall_seconds)
                                      : "");
    if (!o.tty || record.status != Status::Ok)
      progress.note(record.status == Status::Ok ? line
                                                : fmt::format("{}: {}", line, record.message));
  }
  std::error_code ec;
  fs::remove(point_file, ec);

  if (e.report.budget_bytes > 0 && !points.empty() && (!o.shard || o.shard->index == 1)) {
    std::set<std::string> names;
    for (const PatternEntry& entry : e.patterns) {
      if (interrupt_signal() != 0) break;
      if (!names.insert(entry.name).second || done_budgets.count(entry.name) != 0) continue;
      progress.status(fmt::format("budget: largest n of {} within {}", entry.name,
                                  format_bytes(e.report.budget_bytes)));
      SweepPoint templ = points.front();
      for (const SweepPoint& p : points)
        if (p.pattern.name == entry.name) {
          templ = p;
          break;
        }
      const nlohmann::json record =
          budget_record(templ, entry, quick ? e.quick_settings : e.settings, e.report.budget_bytes);
      if (interrupt_signal() != 0) break;  // cut short: not a valid answer
      writer->append(record);
    }
  }
  progress.finish();
  summary.interrupted_by = interrupt_signal();
  return summary;
}

}  // namespace spattn::experiments
