#pragma once
// Shared pieces of the spattn subcommands: geometry options and the subcommand registry.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "spattn/attention/tensor.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/geometry.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn::cli {

// A subcommand's work, run after the command line parsed. Throws spattn::UsageError (exit 2) or
// any other exception (exit 1).
using Action = std::function<void()>;

// Transform for an integer option: plain decimal digits with an optional '-', within
// [min, max], rewritten without leading zeros. On its own CLI11 reads "010" as octal 8, "0x10"
// as hex and saturates values beyond the type.
CLI::Validator decimal(std::int64_t min, std::int64_t max);
// Transform for a tile size option: decimal(1, 128) and one of 16, 32, 64, 128 (help: the sizes).
CLI::Validator tile_size();
// Check for a string option: given, it may not be empty (an empty --out or --save would
// otherwise silently mean "the default").
CLI::Validator non_empty();

// Largest --threads value: far above any core count, far below what oneTBB's arenas accept.
inline constexpr int kMaxThreads = 1024;

// --n, --nk, --heads, --block, --block-q, --block-k, --threads.
struct GeometryOptions {
  std::int64_t n = 0;   // queries (and keys, unless --nk)
  std::int64_t nk = 0;  // keys; 0: equal to n
  int heads = 1;
  int block = 64;
  int block_q = 0;  // 0: --block
  int block_k = 0;  // 0: --block
  int threads = 0;  // layout build threads; 0: all cores

  void add_to(CLI::App& app);
  Geometry geometry() const;  // validated: throws UsageError naming the bad option
  BuildOptions build_options() const;
};

// The pattern spec of mask/stats/run: the SPEC argument with its {n}, {sqrt_n}, {n}/K, {n}*K
// placeholders filled in for n = g.nq (--n; as in experiment files), or the ds_* spec that the
// DeepSpeed config file `deepspeed_config` (--from-deepspeed) maps to. Exactly one of the two
// must be non-empty; throws UsageError otherwise or when the file or a placeholder is bad.
std::string pattern_spec(const std::string& spec, const std::string& deepspeed_config,
                         const Geometry& g);

// --inputs DIR of `stats` and `mask` (for selectors): DIR/q.npy and DIR/k.npy read as `spattn
// run --inputs` reads them ([B, H, N, d], [H, N, d] or [N, d] float32/float16/bfloat16). Their
// tokens and query heads must equal g's nq, nk and heads (UsageError naming the file
// otherwise); K/V heads must divide the query heads.
struct QkInputs {
  Tensor q, k;  // [B, Hq, nq, d], [B, Hkv, nk, d]
};
QkInputs read_qk_inputs(const std::string& dir, const Geometry& g);

// A subcommand and the action to run when it was selected.
struct Command {
  CLI::App* app;
  Action run;
};
Command add_patterns_command(CLI::App& app);
Command add_mask_command(CLI::App& app);
Command add_stats_command(CLI::App& app);
Command add_run_command(CLI::App& app);
Command add_sweep_command(CLI::App& app);
Command add_report_command(CLI::App& app);
// `spattn merge DIR...`: shard run directories combined into one run (cmd_merge.cpp).
Command add_merge_command(CLI::App& app);
// Hidden: `spattn point FILE`, one sweep point in a child process (see experiments/README.md).
Command add_point_command(CLI::App& app);
Command add_search_command(CLI::App& app);
Command add_decode_command(CLI::App& app);

// Throws UsageError for the first long option in `args` (argv without the program name) that
// neither the program nor the command given knows, naming it, the command and the closest
// option it has ("spattn stats: unknown option '--head' (did you mean '--heads'?); ...").
void check_long_options(CLI::App& app, const std::vector<std::string>& args);

// This process's argv (/proc/self/cmdline), for meta.json.
std::vector<std::string> own_command_line();
// Loads the pattern plugins a run directory's meta.json lists (its absolute `plugins`), as
// resuming or merging the run needs them to expand its experiment again.
void load_run_plugins(const std::string& run_dir);

// One line naming the pairs each execution path computes ("auto: whole tiles 1.2e6, ...").
std::string path_summary(const experiments::PathFigures& p, const std::string& path);

}  // namespace spattn::cli
