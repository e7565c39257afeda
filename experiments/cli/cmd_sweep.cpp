// spattn sweep FILE: every point of an experiment in its own child process, recorded in
// results/<name>/<stamp>/results.jsonl, then the reports. Exit codes: 0 done (whatever the
// points' statuses), 2 usage error, 1 runtime error, 130 interrupted (resumable).
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/process.hpp"
#include "spattn/experiments/report.hpp"
#include "spattn/experiments/slurm.hpp"
#include "spattn/experiments/sweep.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/io/plugins.hpp"

namespace spattn::cli {
namespace {

namespace fs = std::filesystem;

struct SweepCliOptions {
  std::string file;
  std::string out = "results";
  std::string resume;
  CLI::Option* resume_opt = nullptr;
  bool quick = false;
  bool dry_run = false;
  bool no_report = false;
  // --repeats, --warmup, --threads: given ones replace the experiment's for every point.
  int repeats = 0, warmup = 0, threads = 0;
  CLI::Option *repeats_opt = nullptr, *warmup_opt = nullptr, *threads_opt = nullptr;
  std::string shard;  // --shard i/n
  // --slurm: write (and with --submit, submit) a Slurm job array instead of running.
  bool slurm = false, submit = false;
  int shards = 0, cpus = 0;
  std::string partition, account, time, mem;
  std::vector<std::string> prelude;
  CLI::Option* slurm_opt = nullptr;
};

// --slurm [--submit]: the job directory, then (with --submit) sbatch through its submit.sh.
void run_slurm(const SweepCliOptions& o, const experiments::SweepOverrides& overrides) {
  if (o.file.empty()) throw UsageError("spattn sweep --slurm: missing the experiment FILE");
  if (o.resume_opt->count() > 0 || !o.shard.empty() || o.dry_run)
    throw UsageError(
        "--slurm writes a job array of every shard: it does not combine with --resume, --shard "
        "or --dry-run (resubmit a task with `sbatch --array=i array.sbatch`)");
  const experiments::Experiment e = experiments::load_experiment(o.file);
  experiments::SlurmOptions so;
  so.shards = o.shards;
  so.partition = o.partition;
  so.account = o.account;
  so.time = o.time;
  if (!o.mem.empty()) so.memory_bytes = parse_byte_count(o.mem, "--mem", std::int64_t{1} << 50);
  so.cpus = o.cpus;
  so.prelude = o.prelude;
  so.out_base = o.out;
  so.spattn = fs::read_symlink("/proc/self/exe");
  so.experiment_file = fs::absolute(o.file).lexically_normal();
  so.quick = o.quick;
  so.overrides = overrides;
  const experiments::SlurmJob job = experiments::write_slurm_job(e, so);
  std::cout << fmt::format(
      "{} shards, each task --time={} --mem={}M --cpus-per-task={}\nwrote {}\nwrote {}\nwrote {}\n",
      job.shards, job.time, job.memory_mb, job.cpus, job.array_script.string(),
      job.merge_script.string(), job.submit_script.string());
  if (!o.submit) {
    std::cout << "submit with: " << job.submit_script.string() << "\n";
    return;
  }
  experiments::ChildOptions child;
  child.argv = {"/bin/bash", job.submit_script.string()};
  child.timeout_seconds = 120;
  const experiments::ChildResult r = experiments::run_child(child);
  std::cout << r.out;
  if (r.end != experiments::ChildResult::End::Exited || r.exit_code != 0)
    throw std::runtime_error(
        fmt::format("submitting with sbatch failed ({}): {}", job.submit_script.string(), r.err));
}

experiments::SweepOverrides overrides_of(const SweepCliOptions& o) {
  experiments::SweepOverrides v;
  if (o.repeats_opt->count() > 0) v.repeats = o.repeats;
  if (o.warmup_opt->count() > 0) v.warmup = o.warmup;
  if (o.threads_opt->count() > 0) v.threads = o.threads;
  return v;
}

void run(SweepCliOptions o) {
  if (o.slurm) return run_slurm(o, overrides_of(o));
  if (o.submit || o.shards > 0 || !o.partition.empty() || !o.account.empty() || !o.time.empty() ||
      !o.mem.empty() || o.cpus > 0 || !o.prelude.empty())
    throw UsageError(
        "--submit, --shards, --partition, --account, --time, --mem, --cpus and --prelude go with "
        "--slurm");
  const bool resume = o.resume_opt->count() > 0;
  // `--resume DIR/results.jsonl` means its directory.
  if (resume && fs::path(o.resume).filename() == "results.jsonl" && fs::is_regular_file(o.resume))
    o.resume = fs::path(o.resume).parent_path().string();
  // `--resume FILE.toml` reads as "resume the latest run of FILE.toml".
  if (resume && o.file.empty() && fs::is_regular_file(o.resume)) {
    o.file = o.resume;
    o.resume.clear();
  }
  experiments::SweepOptions so;
  so.out_base = o.out;
  so.quick = o.quick;
  so.dry_run = o.dry_run;
  so.command_line = own_command_line();
  so.progress = &std::cerr;
  so.listing = &std::cout;
  so.tty = ::isatty(2) != 0;
  so.overrides = overrides_of(o);
  if (!o.shard.empty()) so.shard = experiments::parse_shard(o.shard);

  experiments::Experiment e;
  if (!resume) {
    if (o.file.empty()) throw UsageError("spattn sweep: missing the experiment FILE (a .toml)");
    e = experiments::load_experiment(o.file);
  } else {
    fs::path dir = o.resume;
    if (dir.empty()) {
      if (o.file.empty())
        throw UsageError(
            "spattn sweep --resume: give the run directory (--resume results/NAME/STAMP) or the "
            "experiment FILE whose latest run under --out should be resumed");
      const experiments::Experiment from_file = experiments::load_experiment(o.file);
      dir = experiments::latest_run_dir(o.out, from_file.name);
      if (dir.empty())
        throw UsageError(fmt::format("--resume: no run of '{}' under {} to resume", from_file.name,
                                     (fs::path(o.out) / from_file.name).string()));
    }
    // The run goes on with the experiment recorded in its header, so that its points are the
    // ones the run started with, even if the file was edited since.
    const experiments::SweepHeader h = experiments::read_sweep_header(dir);
    load_run_plugins(dir.string());
    e = experiments::parse_recorded_experiment(
        h.experiment_toml, fmt::format("{} (header)", (dir / "results.jsonl").string()));
    if (!o.file.empty()) {
      const experiments::Experiment given = experiments::load_experiment(o.file);
      if (given.name != h.experiment)
        throw UsageError(fmt::format("--resume: {} holds the experiment '{}', but {} is '{}'",
                                     dir.string(), h.experiment, o.file, given.name));
      if (given.source_text != h.experiment_toml)
        std::cerr << fmt::format(
            "note: {} changed since the run started; resuming with the experiment recorded in "
            "{}\n",
            o.file, (dir / "results.jsonl").string());
    }
    if (o.quick && !h.quick)
      throw UsageError(fmt::format(
          "--quick: the run in {} was started without --quick; resume it without --quick",
          dir.string()));
    // A resumed run measures its remaining points as it measured the others.
    if (so.overrides.any() && !(so.overrides == h.overrides))
      throw UsageError(fmt::format(
          "--resume: the run in {} was started with the overrides {}; --repeats, --warmup and "
          "--threads cannot change in a resumed run (leave them out: the run's own apply)",
          dir.string(), h.overrides.any() ? h.overrides.to_json().dump() : "none"));
    so.overrides = h.overrides;
    // A shard resumes as the shard it is (--shard, if given, must name it).
    if (so.shard && so.shard != h.shard)
      throw UsageError(fmt::format(
          "--resume: the run in {} holds {}; --shard {} cannot change it (leave it out)",
          dir.string(), h.shard ? "shard " + h.shard->text() : std::string("every point"),
          so.shard->text()));
    so.shard = h.shard;
    if (!o.quick && h.quick)
      std::cerr << fmt::format(
          "note: the run in {} was started with --quick: resuming its quick profile (the "
          "file's [quick] settings)\n",
          dir.string());
    so.resume_dir = dir;
  }

  const experiments::SweepSummary s = experiments::run_sweep(e, so);
  if (s.interrupted_by != 0 && s.dir.empty()) {
    std::cerr << "\ninterrupted before any point ran; nothing was written\n";
    std::exit(130);
  }
  if (s.interrupted_by != 0) {
    std::cerr << fmt::format(
        "\ninterrupted: {} point(s) recorded in {} in this run (the point that was running was "
        "not).\nresume with: spattn sweep --resume {}\n",
        s.recorded, (s.dir / "results.jsonl").string(), s.dir.string());
    std::cout.flush();
    std::exit(130);
  }
  if (o.dry_run) return;
  std::string counts;
  for (const auto& [status, count] : s.by_status)
    counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", count, status);
  std::cout << fmt::format(
      "{} points: {} recorded now{}{}\n", s.total, s.recorded,
      counts.empty() ? "" : fmt::format(" ({})", counts),
      s.already_done > 0 ? fmt::format(", {} recorded before", s.already_done) : "");
  std::cout << "wrote " << (s.dir / "results.jsonl").string() << "\n"
            << "wrote " << (s.dir / "meta.json").string() << "\n";
  if (o.no_report) return;
  experiments::write_reports(s.dir);
  std::cout << "wrote " << (s.dir / "results.csv").string() << "\n"
            << "wrote " << (s.dir / "table.md").string() << "\n"
            << "charts: scripts/plot_sweep.py " << s.dir.string() << "\n";
}

}  // namespace

Command add_sweep_command(CLI::App& app) {
  auto o = std::make_shared<SweepCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "sweep",
      "Run every point of an experiment file, each in its own child process with the file's "
      "timeout and memory limit, recording one JSON line per point in "
      "OUT/NAME/STAMP/results.jsonl, then write results.csv and table.md. Ctrl-C stops cleanly; "
      "--resume runs only the missing points.");
  sub->add_option("FILE", o->file, "experiment file (TOML, see experiments/README.md)");
  sub->add_option("--out", o->out, "base directory of the results")
      ->capture_default_str()
      ->check(non_empty());
  o->resume_opt =
      sub->add_option("--resume", o->resume,
                      "complete an earlier run: its directory OUT/NAME/STAMP, or with no value "
                      "the latest run of FILE under --out")
          ->expected(0, 1);
  sub->add_flag("--quick", o->quick, "use the file's [quick] settings");
  sub->add_flag("--dry-run", o->dry_run,
                "list the points with predicted pairs, GFLOP, memory and time; run nothing");
  sub->add_flag("--no-report", o->no_report, "do not write results.csv and table.md at the end");
  o->repeats_opt = sub->add_option("--repeats", o->repeats,
                                   "timed calls per point, replacing the file's `repeats` "
                                   "(recorded in the run's header)")
                       ->transform(decimal(1, 100000));
  o->warmup_opt = sub->add_option("--warmup", o->warmup,
                                  "untimed calls per point, replacing the file's `warmup`")
                      ->transform(decimal(0, 100000));
  o->threads_opt = sub->add_option("--threads", o->threads,
                                   "executor threads of every point (0: all cores), replacing "
                                   "the file's `threads` axis")
                       ->transform(decimal(0, 1024));
  sub->add_option("--shard", o->shard,
                  "run only the i-th of n disjoint parts of the points (i/n, 1 <= i <= n; "
                  "balanced by predicted time); combine the parts with `spattn merge`")
      ->type_name("I/N");
  sub->add_flag("--slurm", o->slurm,
                "write a Slurm job array (one task per shard) and a merge job depending on it "
                "under OUT/NAME-slurm/STAMP/ instead of running");
  sub->add_flag("--submit", o->submit, "with --slurm: submit both jobs with sbatch");
  sub->add_option("--shards", o->shards,
                  "with --slurm: array tasks (default: the distinct points, at most 16)")
      ->transform(decimal(1, 100000));
  sub->add_option("--partition", o->partition, "with --slurm: #SBATCH --partition")
      ->check(non_empty());
  sub->add_option("--account", o->account, "with --slurm: #SBATCH --account")->check(non_empty());
  sub->add_option("--time", o->time,
                  "with --slurm: each task's time limit (default: the sum of its points' "
                  "timeouts + 10% + 5 min)")
      ->check(non_empty());
  sub->add_option("--mem", o->mem,
                  "with --slurm: each task's memory (default: the points' memory limit + 1GiB)")
      ->check(non_empty());
  sub->add_option("--cpus", o->cpus,
                  "with --slurm: #SBATCH --cpus-per-task (default: the largest threads value)")
      ->transform(decimal(1, 4096));
  sub->add_option("--prelude", o->prelude,
                  "with --slurm: a shell line run first in each job (e.g. 'module load "
                  "openmpi'); repeatable")
      ->allow_extra_args(false);
  return {sub, [o] { run(*o); }};
}

}  // namespace spattn::cli
