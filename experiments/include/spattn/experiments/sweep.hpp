#pragma once
// The sweep driver: every point of an experiment in its own child process, one flushed JSON line
// per finished point in results/<name>/<stamp>/results.jsonl, resumable, interruptible.
#include <filesystem>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/shard.hpp"

namespace spattn::experiments {

// Settings given on the command line (`spattn sweep --repeats/--warmup/--threads`) that replace
// the experiment's for every point; recorded in the run's header ("overrides") and applied again
// by --resume.
struct SweepOverrides {
  std::optional<int> repeats, warmup, threads;
  bool any() const { return repeats || warmup || threads; }
  nlohmann::json to_json() const;  // {"repeats": R, ...}, only those given
  // From a header's "overrides" object; UsageError naming `where` on a bad field.
  static SweepOverrides from_json(const nlohmann::json& j, const std::string& where);
  bool operator==(const SweepOverrides&) const = default;
};

struct SweepOptions {
  std::filesystem::path out_base = "results";  // the run goes to out_base/<name>/<stamp>/
  std::filesystem::path resume_dir;            // non-empty: complete this run directory instead
  bool quick = false;                          // the [quick] settings (ignored when resuming:
                                               // the header's choice holds)
  bool dry_run = false;  // print the points with their predictions; run and write nothing
  std::string worker;    // program run as `<worker> point FILE`; empty: this executable
  std::vector<std::string> command_line;  // recorded in meta.json
  std::ostream* progress = nullptr;       // progress and notes; nullptr: silent
  std::ostream* listing = nullptr;        // the dry-run table; nullptr: `progress`
  bool tty = false;          // progress is a terminal: one line rewritten in place, with an ETA
  SweepOverrides overrides;  // applied to every point (and their keys); written to the header
  // Run only this part of the points (assign_shards over every distinct point, by predicted
  // time); recorded in the header as "shard": {"index", "count"}. When resuming it must equal
  // the header's.
  std::optional<ShardSpec> shard;
};

struct SweepSummary {
  std::filesystem::path dir;             // the run directory (empty for a dry run)
  int total = 0;                         // points of the experiment (of the shard, when sharded)
  int already_done = 0;                  // points found in the file when resuming
  int recorded = 0;                      // point records written by this call
  std::map<std::string, int> by_status;  // of the records written by this call
  int interrupted_by = 0;                // SIGINT/SIGTERM number if the sweep stopped early, else 0
};

// Runs (or with dry_run, lists) the sweep. Each point is predicted in this process
// (predict_point); a point whose prediction fails with UsageError is recorded "error", with
// BudgetError or an estimate beyond its memory limit or timeout "skipped"; the others run as
// `<worker> point FILE` under RLIMIT_AS = the memory limit and the timeout, and are recorded
// "ok", "error", "oom", "crashed" or "timeout" (a timeout of 0 means none) (record format:
// experiments/README.md). When report.budget_bytes > 0, "budget" records follow the points.
// SIGINT/SIGTERM kill the running child, which is not recorded, and return with interrupted_by set;
// a second one exits at once. When resuming, the directory's header must name the same experiment,
// and only points (and budget records) missing from the file run. options.overrides replace the
// settings of every point before anything is predicted. Throws UsageError for a bad resume
// directory, or (before anything is written) when any point's .npy inputs cannot serve it
// (check_npy_inputs; a dry run lists such points as errors instead), and std::runtime_error for
// I/O errors. With options.shard only that shard's points are predicted-and-run (all points
// are predicted, to partition them), and budget records are written by shard 1 alone.
SweepSummary run_sweep(const Experiment& e, const SweepOptions& options);

// The points a sweep of `e` runs: expand_points(e, quick) with `overrides` applied (their keys
// follow: threads is an axis).
std::vector<SweepPoint> sweep_points(const Experiment& e, bool quick,
                                     const SweepOverrides& overrides);

// A distinct point of a sweep as a sharded run sees it: whether it would run (its prediction
// fits its limits), its predicted seconds (0 when it would not run) and its shard.
struct ShardedPoint {
  SweepPoint point;
  bool run = false;
  double predicted_seconds = 0;
  int shard = 1;  // 1..count (assign_shards)
};
// Predicts every distinct point of sweep_points(e, quick, overrides) and assigns them to
// `count` shards exactly as `run_sweep` with a shard of `count` does.
std::vector<ShardedPoint> shard_points(const Experiment& e, bool quick,
                                       const SweepOverrides& overrides, int count);

// Creates a new run directory out_base/<experiment>/<stamp> (stamp: UTC time now,
// YYYYmmdd-HHMMSS, "-2", "-3"... appended when taken) and returns it; `stamp` receives its stamp.
std::filesystem::path create_run_dir(const std::filesystem::path& out_base,
                                     const std::string& experiment, std::string& stamp);

// The run directory's header record (the first line of results.jsonl).
struct SweepHeader {
  std::string experiment;
  std::string stamp;
  bool quick = false;
  std::string experiment_toml;
  SweepOverrides overrides;        // the command-line overrides the run started with
  std::optional<ShardSpec> shard;  // the part of the points the run holds (none: all of them)
};
// Reads the header of dir/results.jsonl; throws UsageError naming the directory when there is no
// results file or its first record is not a header.
SweepHeader read_sweep_header(const std::filesystem::path& dir);

// The most recent run directory of `experiment` under out_base (by stamp), or "" if none.
std::filesystem::path latest_run_dir(const std::filesystem::path& out_base,
                                     const std::string& experiment);

}  // namespace spattn::experiments
