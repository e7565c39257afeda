#pragma once
// `spattn merge DIR...`: the run directories of one experiment's shards (or of any partial runs
// of it) combined into one run directory that reports, plots and --resume read like any other.
#include <filesystem>
#include <string>
#include <vector>

namespace spattn::experiments {

struct MergeOptions {
  std::vector<std::filesystem::path> inputs;   // run directories (each with results.jsonl)
  std::filesystem::path out_base = "results";  // the merged run goes to out_base/<name>/<stamp>/
  std::filesystem::path dir;  // non-empty: exactly this directory instead (created; it may
                              // exist only when empty)
  std::vector<std::string> command_line;  // recorded in meta.json
};

struct MergeSummary {
  std::filesystem::path dir;            // the merged run directory
  int expected = 0;                     // distinct points of the experiment
  int written = 0;                      // point records in the merged run
  std::vector<std::string> missing;     // keys of the experiment that no input recorded
  std::vector<std::string> duplicates;  // keys recorded by more than one input (one kept)
  std::vector<std::string> unexpected;  // recorded keys the experiment does not have (kept)
  int shard_count = 0;                  // the inputs' shard count (0: no input is a shard)
  std::vector<int> missing_shards;      // shards 1..shard_count that no input holds
  std::vector<int> repeated_shards;     // shards held by more than one input
};

// Merges the inputs. Their headers must agree on everything but the stamp and the shard (the
// experiment, its recorded text, quick, overrides, report settings), and shards of one count only;
// otherwise UsageError naming the two directories and the field. The experiment recorded in the
// header is expanded again (its plugins must be loaded, as for --resume) to find the expected
// keys. Of a key recorded by several inputs, the record with status "ok" is kept, else the
// first in input order; each point record is validated (measurement_from_json). The merged
// directory holds a header without "shard" and with "merged_from" (each input's directory, stamp
// and shard), the point records in point order (unexpected ones after them), each budget record
// once (by pattern), and meta.json (the first input's, with every input's host, start time and
// command line under "merged_from"). Missing points can then be run by `spattn sweep --resume`
// on the merged directory. Throws UsageError for a bad input, std::runtime_error on I/O errors.
MergeSummary merge_runs(const MergeOptions& options);

}  // namespace spattn::experiments
