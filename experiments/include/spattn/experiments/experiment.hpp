#pragma once
// An experiment file (TOML, schema in experiments/README.md) and the sweep points it expands to.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "spattn/attention/execution_path.hpp"
#include "spattn/attention/kv_tensor.hpp"
#include "spattn/experiments/axes.hpp"
#include "spattn/experiments/executor.hpp"
#include "spattn/patterns/registry.hpp"

namespace spattn::experiments {

// One entry of `patterns`: a spec string with a display name and its own limits.
struct PatternEntry {
  std::string name;  // display name (default: the spec as written)
  // Pattern spec string; may hold the placeholders {n} (the point's seq_len) and {sqrt_n}
  // (round(sqrt(seq_len))), replaced per point by spec_at (e.g. "st_strided({sqrt_n})").
  std::string spec;
  std::int64_t max_n = 0;  // largest seq_len this pattern runs at (0: no limit)
  std::int64_t min_n = 0;  // smallest seq_len this pattern runs at (0: no limit)
  // Spec of the pattern whose attention fidelity compares against (empty: the settings').
  std::string fidelity_baseline;
  int block = 0;  // block size override for this pattern (0: the `block` axis)
  int line = 0;   // TOML line of the entry, for messages
};

// Where Q, K and V come from.
struct InputSpec {
  std::string kind = "random";  // "random" | "synthetic" | "planted" | "npy"
  // For "npy": a directory with q.npy, k.npy, v.npy; may hold {n} (the point's seq_len) and
  // {sqrt_n}, filled in per point as in pattern specs (input_dir in inputs.hpp).
  std::string npy_dir;
  // For "npy": which tokens of a capture longer than the point serves it, "first" or "last".
  std::string tokens = "first";
  // How keys and records name the inputs: "random", "synthetic", "npy:DIR", and
  // "npy:DIR (last tokens)" when tokens is "last".
  std::string name() const;
};

// Settings that apply to every point (TOML top-level keys, overridable by [quick]).
struct Settings {
  int repeats = 5;                      // timed attention calls per point
  int warmup = 1;                       // untimed calls before them
  double timeout_seconds = 600;         // per point, wall clock of the child process
  std::int64_t memory_bytes = 0;        // per-point address-space limit; 0: default_memory_budget()
  std::uint64_t seed = 0;               // input and pattern seed
  bool check = false;                   // compare against the dense reference where it fits
  std::int64_t check_max_n = 2048;      // largest N checked against the reference
  bool fidelity = false;                // record rel. L2 error and mass recall vs dense
  std::int64_t fidelity_max_n = 16384;  // largest N whose dense attention is computed
  // Spec of the full attention fidelity compares against: "dense" (every key), or "causal" for
  // patterns that only look back (their recall is then not charged for future keys).
  std::string fidelity_baseline = "dense";
  InputSpec inputs;
  double predict_gflops = 100;  // assumed rate for predicting a point's time (skip/ETA)
  // Softmax scale of every point (TOML `scale`, finite and > 0; none: 1 / sqrt(head_dim)); a
  // point's SweepPoint::scale is this.
  std::optional<double> scale;
};

// A point's memory limit (address space of its child, budget of its layout and executors):
// s.memory_bytes, or default_memory_budget() when that is 0.
std::int64_t memory_limit(const Settings& s);

// Figures a paper published for one pattern of the file ([[report.published]]), printed by
// `spattn report` beside the measured ones with the ratio meant to carry over to a CPU.
struct PublishedFigures {
  std::string pattern;  // the name of the pattern entry that stands for the paper's row
  std::string source;   // the paper, table and row, e.g. "LRA Table 2, Local Attention"
  // "speedup": speed relative to the report's baseline at each N (compared with the measured
  // speedup and its growth over N); "time_ms": times at each N (compared by the exponent
  // log(t2/t1)/log(N2/N1) between successive N); "pairs_slope": a complexity exponent (one
  // value, no N; compared with the fitted slopes of allowed pairs and of time against N).
  std::string quantity;
  std::vector<std::int64_t> n;  // ascending, one per value (empty for "pairs_slope")
  std::vector<double> values;
};

// What `spattn report` lays out (TOML table [report]).
struct ReportSettings {
  // A registered table layout (report_layout_names() in report_layouts.hpp): "scaling"
  // (default: per-N tables and slopes), "lra_table2", "flash_scaling", "density", ...
  std::string layout = "scaling";
  std::string baseline = "dense";  // pattern name that speedups are measured against
  std::int64_t budget_bytes = 0;   // "audit": the budget for the largest-N column (0: none)
  std::vector<PublishedFigures> published;
};

// The published figures as the sweep's header records them ({pattern, source, quantity, n,
// values} each) and back; from_json throws UsageError naming `where` and the field.
nlohmann::json published_to_json(const std::vector<PublishedFigures>& p);
std::vector<PublishedFigures> published_from_json(const nlohmann::json& j,
                                                  const std::string& where);

struct Experiment {
  std::string name;         // [a-zA-Z0-9_.-]+, names the results directory
  std::string description;  // free text
  std::filesystem::path source_path;
  std::string source_text;  // the TOML file itself (copied into meta.json)
  // `plugins = [...]`: pattern plugins loaded before the specs are read, as absolute paths
  // (relative ones are relative to the file's directory).
  std::vector<std::string> plugins;

  // Axes: every combination of the patterns and the values of each axis (axes.hpp) is one
  // point (patterns whose max_n is exceeded are left out).
  std::vector<PatternEntry> patterns;
  AxisValues axes;        // seq_len (a list, or {from, to, factor} expanded) and the others
  AxisValues quick_axes;  // the same with [quick] applied (equal where [quick] is silent)
  Settings settings;
  Settings quick_settings;  // settings with [quick] applied
  ReportSettings report;
};

// One point of a sweep: all axes fixed, plus the settings it runs with. Each axis of
// axis_table() sets one field here.
struct SweepPoint {
  int index = 0;    // position in the expanded list
  std::string key;  // stable identity of the axes (used by --resume)
  PatternEntry pattern;
  std::int64_t n = 0;   // queries nq
  std::int64_t nk = 0;  // keys; 0: equal to n (sweeps); queries sit at the last nq positions
  int head_dim = 64, heads = 8, kv_heads = 8, batch = 1, threads = 0, block = 64;
  int block_k = 0;     // key tile size; 0: equal to block (the query tile size)
  int head_dim_v = 0;  // head dim d_v of v and o; 0: head_dim (q and k have head_dim)
  std::string tile_mode = "auto";
  Executor executor = Executor::Flash;
  ExecutionPath path = ExecutionPath::Auto;  // the flash executor's AttentionOptions::path
  // Score modifications (AttentionOptions::mod, score_mod.hpp): ALiBi (the paper's slopes, or
  // one per query head from alibi_slopes_file), soft-capping C (0: none), learned sinks (one
  // logit per query head from sinks_file); the softmax scale (none: 1 / sqrt(d)). The files come
  // from `spattn run` only; the scale from `spattn run --scale` or the experiment's `scale`.
  bool alibi = false;
  double softcap = 0;
  std::string alibi_slopes_file, sinks_file;
  // An additive bias (`spattn run --bias`): a float32 .npy of [heads or 1, n, nk] (per element)
  // or [heads or 1, q_blocks, k_blocks] (per tile of the point's geometry).
  std::string bias_file;
  std::optional<double> scale;
  // Which phase is measured: "prefill" (attention of all n queries, the executor above) or
  // "decode" (generation under a KV cache, decode_sim.hpp: a prompt of n tokens enters the cache
  // `cache`, then decode_steps steps each add one token and attend one query per head; the
  // pattern must then be "dense", since the cache policy decides what each step reads).
  std::string phase = "prefill";
  KVDtype kv_dtype = KVDtype::F32;  // storage of K and V (queries and accumulation stay float32)
  std::string cache = "full";       // decode: the cache policy, canonical (CachePolicy::spec)
  std::int64_t decode_steps = 16;   // decode: timed steps
  Settings settings;
  // Pattern plugins the point's process loads first: every plugin the expanding process had
  // loaded (--plugin, SPATTN_PLUGINS, the file's `plugins`), as absolute paths.
  std::vector<std::string> plugins;
};

// Parses an experiment file, loading its `plugins` into Registry::global() first; throws
// spattn::UsageError naming the file, the TOML line, the bad key or value and what is allowed
// (unknown keys, wrong types and impossible values included).
Experiment load_experiment(const std::filesystem::path& path);
// The same from text; `source_name` stands for the file name in messages.
Experiment parse_experiment(const std::string& text, const std::string& source_name);
// The same, checking pattern specs against `registry` (the fuzz target's registry does not open
// the files that blocks(file=...) names). `plugins` are loaded only when `registry` is
// Registry::global(); otherwise they are recorded and not opened.
Experiment parse_experiment(const std::string& text, const std::string& source_name,
                            const Registry& registry);

// An experiment recorded in a run's header (--resume): as parse_experiment, except that its
// `plugins` key is neither loaded nor kept (its relative paths were relative to the file, which
// the header is not); the caller loads the run's plugins from its meta.json first.
Experiment parse_recorded_experiment(const std::string& text, const std::string& source_name);

// The plugins a run of `e` uses: those loaded in this process (--plugin, SPATTN_PLUGINS, the
// file's own when it was loaded here), then any of e.plugins not among them; absolute paths.
std::vector<std::string> run_plugins(const Experiment& e);

// All points in a fixed order (patterns, then the axes in axis_table() order, the last varying
// fastest); `quick` uses the [quick] overrides. A pattern's own `block` replaces the block axis.
std::vector<SweepPoint> expand_points(const Experiment& e, bool quick);

// The point's key: the pattern, the axes as `key=value` joined by ';', then the inputs, e.g.
// "pattern=dense;n=1024;d=64;h=8;hkv=8;b=1;t=0;block=64;tile=auto;inputs=random". Axes that are
// not `always_in_key` follow only when off their default: ";exec=textbook".
std::string point_key(const SweepPoint& p);

// `spec` with its placeholders replaced for seq_len n: {n} -> n, {sqrt_n} -> round(sqrt(n)),
// either followed by /K (floor division) or *K with K a decimal integer >= 1 ({n}/8). Throws
// UsageError naming any other {...} placeholder or a bad K. The CLI applies it with n = --n.
std::string spec_at(const std::string& spec, std::int64_t n);

// A point as JSON (what the child process receives) and back; from_json validates.
nlohmann::json point_to_json(const SweepPoint& p);
SweepPoint point_from_json(const nlohmann::json& j);

}  // namespace spattn::experiments
