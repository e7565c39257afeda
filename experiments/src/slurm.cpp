// Slurm job scripts for a sharded sweep (see slurm.hpp).
#include "spattn/experiments/slurm.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "spattn/patterns/error.hpp"

namespace spattn::experiments {
namespace {

namespace fs = std::filesystem;

// `s` in single quotes for the shell.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void write_script(const fs::path& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
  }
  ::chmod(path.c_str(), 0755);
}

// Slurm's own --time syntaxes that the scripts accept from the user.
void check_time(const std::string& t) {
  const bool ok = !t.empty() && t.size() < 20 &&
                  t.find_first_not_of("0123456789:-") == std::string::npos &&
                  std::isdigit(static_cast<unsigned char>(t.front())) != 0;
  if (!ok)
    throw UsageError(fmt::format(
        "--time: '{}' is not a Slurm time limit; write minutes (90), HH:MM:SS (01:30:00) or "
        "D-HH:MM:SS (1-00:00:00)",
        t));
}

// #SBATCH lines shared by both jobs.
std::string common_directives(const SlurmOptions& o) {
  std::string s;
  if (!o.partition.empty()) s += fmt::format("#SBATCH --partition={}\n", o.partition);
  if (!o.account.empty()) s += fmt::format("#SBATCH --account={}\n", o.account);
  return s;
}

std::string prelude(const SlurmOptions& o) {
  std::string s;
  for (const std::string& line : o.prelude) s += line + "\n";
  return s;
}

}  // namespace

std::string slurm_time(double seconds) {
  const auto minutes = static_cast<long long>(std::ceil(std::max(60.0, seconds) / 60.0));
  if (minutes < 60) return std::to_string(minutes);
  const long long d = minutes / 1440, h = minutes / 60 % 24, m = minutes % 60;
  return d > 0 ? fmt::format("{}-{:02}:{:02}:00", d, h, m) : fmt::format("{:02}:{:02}:00", h, m);
}

SlurmJob write_slurm_job(const Experiment& e, const SlurmOptions& o) {
  for (const auto& [name, value] :
       {std::pair{"--partition", &o.partition}, std::pair{"--account", &o.account}})
    if (value->find_first_of(" \t\n'\"\\$`;") != std::string::npos)
      throw UsageError(
          fmt::format("{}: '{}' is not a Slurm name (no spaces, quotes or shell "
                      "characters)",
                      name, *value));
  if (!o.time.empty()) check_time(o.time);
  for (const std::string& line : o.prelude)
    if (line.find('\n') != std::string::npos)
      throw UsageError("--prelude: give one shell line per --prelude (no newlines)");

  const std::vector<SweepPoint> points = sweep_points(e, o.quick, o.overrides);
  std::map<std::string, int> distinct;
  for (const SweepPoint& p : points) distinct.emplace(p.key, 0);
  if (distinct.empty()) throw UsageError(fmt::format("{} has no points to run", e.name));
  SlurmJob job;
  job.shards = o.shards > 0 ? o.shards : std::min<int>(16, static_cast<int>(distinct.size()));
  if (job.shards > static_cast<int>(distinct.size()))
    throw UsageError(fmt::format("--shards {}: the sweep has only {} distinct points", job.shards,
                                 distinct.size()));

  // Limits from the experiment's: memory and threads over every point, time per shard.
  std::int64_t memory = 0;
  int threads = 0;
  for (const SweepPoint& p : points) {
    memory = std::max(memory, memory_limit(p.settings));
    threads = std::max(threads, p.threads);
  }
  job.memory_mb = o.memory_bytes > 0 ? (o.memory_bytes + (1 << 20) - 1) >> 20
                                     : ((memory + (1 << 20) - 1) >> 20) + 1024;
  job.cpus = o.cpus > 0 ? o.cpus : std::max(1, threads);
  if (!o.time.empty()) {
    job.time = o.time;
  } else {
    std::vector<double> seconds(static_cast<std::size_t>(job.shards), 0.0);
    for (const ShardedPoint& p : shard_points(e, o.quick, o.overrides, job.shards)) {
      if (!p.run) continue;
      if (p.point.settings.timeout_seconds <= 0)
        throw UsageError(fmt::format(
            "--slurm: point {} has no timeout (timeout = 0), so no time limit can be derived for "
            "its task; give --time",
            p.point.key));
      seconds[static_cast<std::size_t>(p.shard - 1)] += p.point.settings.timeout_seconds;
    }
    job.time = slurm_time(*std::max_element(seconds.begin(), seconds.end()) * 1.1 + 300);
  }

  std::string stamp;
  job.dir = fs::absolute(create_run_dir(o.out_base, e.name + "-slurm", stamp)).lexically_normal();
  fs::create_directories(job.dir / "logs");
  fs::create_directories(job.dir / "shards");
  const std::string dir = quoted(job.dir.string()), exe = quoted(o.spattn.string()),
                    file = quoted(o.experiment_file.string());
  std::string sweep_flags = o.quick ? " --quick" : "";
  if (o.overrides.repeats) sweep_flags += fmt::format(" --repeats {}", *o.overrides.repeats);
  if (o.overrides.warmup) sweep_flags += fmt::format(" --warmup {}", *o.overrides.warmup);
  if (o.overrides.threads) sweep_flags += fmt::format(" --threads {}", *o.overrides.threads);

  job.array_script = job.dir / "array.sbatch";
  write_script(
      job.array_script,
      fmt::format(
          "#!/bin/bash\n"
          "# One task per shard of the sweep of {name}; written by `spattn sweep --slurm`.\n"
          "# Resubmit a failed or killed task i with: sbatch --array=i {script}\n"
          "#SBATCH --job-name=spattn-{name}\n"
          "#SBATCH --array=1-{n}\n"
          "#SBATCH --time={time}\n"
          "#SBATCH --mem={mem}M\n"
          "#SBATCH --cpus-per-task={cpus}\n"
          "#SBATCH --output={logs}/shard-%a.out\n"
          "{common}{prelude}"
          "set -euo pipefail\n"
          "i=\"$SLURM_ARRAY_TASK_ID\"\n"
          "out={dir}/shards/\"$i\"\n"
          "if ls \"$out\"/{name}/*/results.jsonl >/dev/null 2>&1; then\n"
          "  exec {exe} sweep {file} --out \"$out\" --no-report --resume\n"
          "fi\n"
          "exec {exe} sweep {file} --shard \"$i/{n}\" --out \"$out\" --no-report{flags}\n",
          fmt::arg("name", e.name), fmt::arg("script", job.array_script.string()),
          fmt::arg("n", job.shards), fmt::arg("time", job.time), fmt::arg("mem", job.memory_mb),
          fmt::arg("cpus", job.cpus), fmt::arg("logs", (job.dir / "logs").string()),
          fmt::arg("common", common_directives(o)), fmt::arg("prelude", prelude(o)),
          fmt::arg("dir", dir), fmt::arg("exe", exe), fmt::arg("file", file),
          fmt::arg("flags", sweep_flags)));

  job.merge_script = job.dir / "merge.sbatch";
  write_script(
      job.merge_script,
      fmt::format(
          "#!/bin/bash\n"
          "# Merges the shards of {name} into {dir_plain}/merged once the array has ended.\n"
          "#SBATCH --job-name=spattn-{name}-merge\n"
          "#SBATCH --time=30\n"
          "#SBATCH --mem=2048M\n"
          "#SBATCH --cpus-per-task=1\n"
          "#SBATCH --output={logs}/merge.out\n"
          "{common}{prelude}"
          "set -euo pipefail\n"
          "rm -rf {dir}/merged.tmp\n"
          "{exe} merge {dir}/shards/*/{name}/* --dir {dir}/merged.tmp\n"
          "rm -rf {dir}/merged\n"
          "mv {dir}/merged.tmp {dir}/merged\n"
          "echo \"merged: {dir_plain}/merged\"\n",
          fmt::arg("name", e.name), fmt::arg("logs", (job.dir / "logs").string()),
          fmt::arg("common", common_directives(o)), fmt::arg("prelude", prelude(o)),
          fmt::arg("dir", dir), fmt::arg("dir_plain", job.dir.string()), fmt::arg("exe", exe)));

  job.submit_script = job.dir / "submit.sh";
  write_script(job.submit_script,
               fmt::format("#!/bin/bash\n"
                           "# Submits the shards of {name}, then their merge.\n"
                           "set -euo pipefail\n"
                           "array=$(sbatch --parsable {array})\n"
                           "array=\"${{array%%;*}}\"\n"
                           "merge=$(sbatch --parsable --dependency=afterany:\"$array\" {merge})\n"
                           "merge=\"${{merge%%;*}}\"\n"
                           "echo \"array job $array ({n} tasks), merge job $merge\"\n"
                           "echo \"merged run (when done): {dir}/merged\"\n",
                           fmt::arg("name", e.name), fmt::arg("array", job.array_script.string()),
                           fmt::arg("merge", job.merge_script.string()), fmt::arg("n", job.shards),
                           fmt::arg("dir", job.dir.string())));
  return job;
}

}  // namespace spattn::experiments
