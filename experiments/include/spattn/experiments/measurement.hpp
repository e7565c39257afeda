#pragma once
// The one typed record of a measurement. `spattn run --json`, `spattn stats --json`, every sweep
// point (a line of results.jsonl), the report and scripts/plot_sweep.py all read and write this
// record, through the one serializer and parser below. Field by field, with units, in
// experiments/README.md ("The measurement record").
//
// JSON shape (schema 2; groups that were not measured are null):
//   {"schema": 2, "kind": "point", "source": "run"|"stats"|"sweep", "key": KEY, "index": I,
//    "status": "ok"|"skipped"|"timeout"|"crashed"|"oom"|"error", "message": TEXT,
//    "axes":      {pattern, spec, n, nk, head_dim, heads, kv_heads, batch, threads, block_q,
//                  block_k, tile_mode, executor, inputs, seed, [alibi, softcap, sinks, scale,
//                  phase, kv_dtype, cache]},
//    "layout":    {allowed_pairs, computed_pairs, kept_tiles, full_tiles, partial_tiles,
//                  layout_bytes, distinct_head_layouts, build, scanned_part, build_seconds,
//                  density, efficiency},
//    "predicted": {useful_flops, computed_flops, bytes_read, bytes_written, input_bytes,
//                  output_bytes, workspace_bytes, memory_bytes, seconds},
//    "attention": {warmup, repeats, seconds: [..], median, min, max,
//                  useful_gflops, computed_gflops},
//    "resources": {workspace_bytes, peak_rss_bytes, wall_seconds, tasks, split_rows, threads_used},
//    "check":     {max_abs_error, max_rel_error, rel_l2_error, max_lse_error, finite,
//                  reference_seconds},
//    "fidelity":  {rel_l2_error, recall_mean, recall_min, oracle_recall_mean, oracle_recall_min,
//                  needle_hit, inputs, baseline},
//    "selection": {select_ms, flops, bytes}   (only when the spec holds a selector),
//    "decode":    {prompt, steps, tokens_per_second, kv_bytes_per_step, kv_read_gbps,
//                  cache_bytes, cache_tokens, kernel, needle_recall, rel_l2_max}
//                 (only in phase "decode"; axes then also hold phase, kv_dtype, cache),
//    "saved":     DIR or null}
// density, efficiency, median/min/max and the GFLOP/s are derived: written for readers of the
// file (CSV, charts), recomputed from the counts and times when a record is parsed.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spattn/experiments/executor.hpp"

namespace spattn::experiments {

// Version of the record format, written as "schema" in every record. Records without "schema"
// are the untyped results.jsonl lines of earlier spattn versions (schema 1).
inline constexpr int kMeasurementSchema = 2;

// How a point ended (sweeps; `run` and `stats` records are always Ok).
enum class Status { Ok, Skipped, Timeout, Crashed, Oom, Error };
std::string_view status_name(Status s);  // "ok", "skipped", ...
std::optional<Status> parse_status(std::string_view name);

// What was measured: every axis of the point.
struct MeasuredAxes {
  std::string pattern;  // display name (the spec as written when the file names none)
  std::string spec;     // spec as run: placeholders filled in
  std::int64_t n = 0;   // queries nq
  std::int64_t nk = 0;  // keys (sweeps: = n); queries sit at the last nq positions
  int head_dim = 64;
  int head_dim_v = 64;  // d_v of v and o (absent in older records: head_dim)
  int heads = 8;        // query heads Hq
  int kv_heads = 8;     // K/V heads Hkv, resolved (never 0)
  int batch = 1;
  int threads = 0;  // as requested; 0: all cores
  int block_q = 64, block_k = 64;
  std::string tile_mode = "auto";  // "auto" | "partial" (every kept tile through the mask)
  Executor executor = Executor::Flash;
  std::string path = "auto";      // the flash executor's execution path (execution_path.hpp)
  std::string inputs = "random";  // "random" | "synthetic" | "npy:DIR"
  std::uint64_t seed = 0;
  // Score modifications (score_mod.hpp): ALiBi on, soft-capping C (none: off), learned sinks on,
  // the softmax scale as given (none: 1 / sqrt(d)). Absent in older records: all off.
  bool alibi = false;
  std::optional<double> softcap;
  bool sinks = false;
  bool bias = false;  // an additive bias (--bias) on
  std::optional<double> scale;
  // The phase measured ("prefill" | "decode"), the K/V storage ("f32" | "bf16" | "int8") and, in
  // decode, the cache policy (kvcache/policy.hpp, canonical spec). Absent in older records:
  // prefill, f32, none.
  std::string phase = "prefill";
  std::string kv_dtype = "f32";
  std::optional<std::string> cache;
};

// Pairs computed by each path of the flash executor's plan (execution_path.hpp), all batches and
// query heads.
struct PathFigures {
  std::int64_t tile_area_pairs = 0;  // area of the kept tiles (v1's computed pairs)
  std::int64_t whole_pairs = 0, run_pairs = 0, gather_pairs = 0, diagonal_pairs = 0;
  std::int64_t skipped_tiles = 0;  // kept tiles whose pairs all ran as diagonals
  std::int64_t diagonal_rows = 0;  // query-tile rows (x heads x batch) on the diagonal path
};

// The layout's exact counts (all batches and query heads), from the cost model.
struct LayoutFigures {
  std::int64_t allowed_pairs = 0;
  std::int64_t computed_pairs = 0;   // what the executor's plan computes (sum of the paths)
  std::optional<PathFigures> paths;  // none in records written before the paths existed
  std::int64_t kept_tiles = 0, full_tiles = 0, partial_tiles = 0;
  std::int64_t layout_bytes = 0;
  int distinct_head_layouts = 1;
  bool scanned = false;      // the build evaluated allows() pair by pair somewhere
  std::string scanned_part;  // the pattern that was scanned ("" when analytic)
  double build_seconds = 0;  // layout build wall time
};

// The cost model's prediction for the point.
struct Prediction {
  double useful_flops = 0;     // 4·d·allowed pairs
  double computed_flops = 0;   // 4·d·computed pairs
  double score_mod_flops = 0;  // extra work of the score modifications (cost.hpp)
  double bytes_read = 0, bytes_written = 0;
  std::int64_t input_bytes = 0, output_bytes = 0;
  std::int64_t workspace_bytes = 0;  // executor workspace estimate
  std::int64_t memory_bytes = 0;     // whole point: inputs, outputs, layout, workspace, extras
  double seconds = 0;                // whole point at the experiment's predict_gflops
};

// Timed attention calls.
struct AttentionTimes {
  int warmup = 0;
  std::vector<double> seconds;  // each timed call, in call order (at least one)
  double median() const;        // of `seconds` (mean of the two middle values for even counts)
  double min() const;
  double max() const;
};

// What the run used.
struct Resources {
  std::optional<std::int64_t> workspace_bytes;  // executor's own peak allocation
  std::optional<std::int64_t> peak_rss_bytes;   // max resident set of the measuring process
  std::optional<double> wall_seconds;           // sweeps: the child's whole wall time
  std::optional<std::int64_t> tasks, split_rows;
  std::optional<int> threads_used;  // threads the executor ran on
};

// Against the double reference executor (--check, `check = true`).
struct CheckFigures {
  double max_abs_error = 0, max_rel_error = 0, rel_l2_error = 0, max_lse_error = 0;
  bool finite = true;
  double reference_seconds = 0;
};

// Against full attention on the same inputs (`fidelity = true`).
struct FidelityFigures {
  double rel_l2_error = 0, recall_mean = 0, recall_min = 0;
  std::string inputs;    // "random" | "synthetic" | "planted" | "npy:DIR"
  std::string baseline;  // spec of the full attention compared with ("dense", "causal")
  // The oracle ceiling at the same budget (oracle_ceiling.hpp): per row, the recall of the best
  // n_i keys, n_i the keys the layout keeps in that row; mean and minimum over rows. None with
  // score modifications, and in records written before it existed.
  std::optional<double> oracle_recall_mean, oracle_recall_min;
  // Planted inputs only: the share of the planted needles (batch x query head x needle) whose
  // key the layout keeps for the needle's query.
  std::optional<double> needle_hit;
};

// The estimation step of a selector (a pattern that chooses its keys from Q and K), timed apart
// from attention: scoring Q and K, resolving the selectors and building the layouts, all
// batches. Written as "selection" only for points whose spec holds a selector.
struct SelectionFigures {
  double select_ms = 0;  // wall time, milliseconds
  double flops = 0;      // the scoring's FLOPs (2 per multiply-add), all batches and heads
  double bytes = 0;      // float32 bytes of Q and K the scoring reads
};

// Generation under a KV cache (phase "decode", decode_sim.hpp); the step times are the record's
// attention seconds.
struct DecodeFigures {
  std::int64_t prompt = 0;              // tokens in the cache before the first step (= axes.n)
  std::int64_t steps = 0;               // decode steps, one token and one query per head each
  double tokens_per_second = 0;         // steps / sum of the step times
  double kv_bytes_per_step = 0;         // mean K/V bytes (and page metadata) read per step
  double kv_read_gbps = 0;              // kv_bytes_per_step / median step time, 1e9 B/s
  std::int64_t cache_bytes = 0;         // memory of the policy's cache
  std::int64_t cache_tokens = 0;        // tokens it holds after the last step
  std::string kernel;                   // the row kernels that ran, e.g. "int8-avx512"
  std::optional<double> needle_recall;  // share of (step, head) whose read set held the needle
  std::optional<double> rel_l2_max;     // worst step against the full float32 cache
};

struct Measurement {
  std::string source = "sweep";  // "run" | "stats" | "sweep": which command wrote it
  std::string key;               // the point's key (point_key); resume and merging match on it
  int index = 0;                 // position in the sweep (0 for run and stats)
  Status status = Status::Ok;
  std::string message;  // why, when status is not Ok ("" when Ok)
  MeasuredAxes axes;
  std::optional<LayoutFigures> layout;
  std::optional<Prediction> predicted;
  std::optional<AttentionTimes> attention;
  Resources resources;
  std::optional<CheckFigures> check;
  std::optional<FidelityFigures> fidelity;
  std::optional<SelectionFigures> selection;  // selectors only
  std::optional<DecodeFigures> decode;        // phase "decode" only
  std::optional<std::string> saved;           // `run --save DIR`

  // Derived figures (nullopt when what they need is missing).
  std::optional<double> density() const;          // allowed / (batch·heads·n·nk)
  std::optional<double> efficiency() const;       // allowed / computed; none when nothing computed
  std::optional<double> useful_gflops() const;    // useful flops / median seconds / 1e9
  std::optional<double> computed_gflops() const;  // computed flops / median seconds / 1e9
};

// The record as JSON (the shape above), keys in a fixed order: the same record gives the same
// bytes.
nlohmann::ordered_json to_json(const Measurement& m);

// Parses a record written by to_json (schema 2), or an untyped results.jsonl point record of
// schema 1. Throws UsageError naming `where` (e.g. "results.jsonl line 7"), the field and what it
// must be, for a missing or mistyped field, an unknown status or executor, or a schema newer
// than kMeasurementSchema.
Measurement measurement_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace spattn::experiments
