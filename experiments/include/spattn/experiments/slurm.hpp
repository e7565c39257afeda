#pragma once
// A sweep as a Slurm job array: one array task per shard (`spattn sweep --shard i/n`), and a merge
// job (`spattn merge`) that starts when the array has ended, whatever its tasks' fates.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/sweep.hpp"

namespace spattn::experiments {

struct SlurmOptions {
  int shards = 0;                    // array tasks; 0: the number of distinct points, at most 16
  std::string partition, account;    // #SBATCH --partition / --account (empty: the site default)
  std::string time;                  // #SBATCH --time of each task (empty: derived, see below)
  std::int64_t memory_bytes = 0;     // #SBATCH --mem of each task (0: derived)
  int cpus = 0;                      // #SBATCH --cpus-per-task (0: derived)
  std::vector<std::string> prelude;  // shell lines run first in every job (`module load ...`)
  std::filesystem::path out_base = "results";  // the job goes to out_base/<name>-slurm/<stamp>/
  std::filesystem::path spattn;                // the spattn executable the jobs run (absolute)
  std::filesystem::path experiment_file;       // the experiment file the tasks read (absolute)
  bool quick = false;
  SweepOverrides overrides;
};

struct SlurmJob {
  std::filesystem::path dir;  // out_base/<name>-slurm/<stamp>/ (absolute)
  std::filesystem::path array_script, merge_script, submit_script;
  int shards = 0;
  std::string time;            // each array task's --time
  std::int64_t memory_mb = 0;  // each array task's --mem, MiB
  int cpus = 0;                // each task's --cpus-per-task
};

// Writes the job directory: array.sbatch (`#SBATCH --array=1-n`; task i runs
// `spattn sweep FILE --shard i/n --out DIR/shards/i`, or when that base already holds a run of
// the experiment, `--resume`s it: resubmitting a task, `sbatch --array=i array.sbatch`, completes
// its shard), merge.sbatch (`spattn merge DIR/shards/*/NAME/* --dir DIR/merged`, replacing an
// earlier merge), submit.sh (submits the array, then the merge with --dependency=afterany on
// it, and prints both job ids) and logs/. Derived limits: --mem = the largest memory limit of
// the points (the child's address-space limit) + 1 GiB for the sweep process; --time = the
// largest over shards of the sum of their running points' timeouts, + 10% + 5 minutes (a point
// without a timeout makes --time necessary: UsageError); --cpus-per-task = the largest threads
// axis value (0, all cores: 1 unless `cpus` says otherwise). Throws UsageError for bad options,
// std::runtime_error on I/O errors.
SlurmJob write_slurm_job(const Experiment& e, const SlurmOptions& options);

// A Slurm --time value for `seconds` rounded up to a minute: "MM", "HH:MM:00" or "D-HH:MM:00".
std::string slurm_time(double seconds);

}  // namespace spattn::experiments
