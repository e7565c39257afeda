// spattn run SPEC --n N ...: a sweep of one point. Its options become a SweepPoint, measured by
// the sweep's own path (prepare_point, measure_prepared): the flash executor (or the textbook
// baseline) on random or loaded inputs, timed, beside the cost model's figures; --check compares
// with the reference executor. --json prints the Measurement record as one line.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "distributed_run.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/experiments/executor.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/io/npy.hpp"

namespace spattn::cli {
namespace {

struct RunOptions {
  std::string spec;
  std::string from_deepspeed;  // DeepSpeed config file, instead of `spec`
  GeometryOptions geo;
  std::int64_t dim = 64;
  std::int64_t dv = 0;  // value head dim d_v; 0: --d
  int kv_heads = 0;     // 0: --heads
  std::int64_t batch = 1;
  int repeats = 5;
  std::uint64_t seed = 0;
  std::string executor = "flash";
  bool check = false;
  bool json = false;
  bool mask_full_tiles = false;
  bool distributed = false;  // --distributed: context-parallel over the ranks of mpirun
  bool zigzag = false;       // --zigzag: zig-zag shards (with --distributed)
  std::string path = "auto";
  std::string kv_dtype = "f32";
  std::string inputs, save;
  std::string memory_budget;
  // Score modifications (score_mod.hpp) and the softmax scale.
  bool alibi = false;
  std::string alibi_slopes, sinks, bias;
  std::optional<double> softcap, scale;
  // Which options the user gave (the rest may come from --inputs files).
  CLI::Option *dim_opt = nullptr, *heads_opt = nullptr, *kv_heads_opt = nullptr,
              *batch_opt = nullptr, *nk_opt = nullptr, *n_opt = nullptr, *dv_opt = nullptr;
};

// A flag the user gave must equal the file's size; `flag` and `axis` name both in the message.
void match(const CLI::Option* given, std::int64_t flag_value, const std::string& flag,
           std::int64_t file_value, const std::string& file, const std::string& axis) {
  if (given != nullptr && given->count() > 0 && flag_value != file_value)
    throw UsageError(fmt::format("{} has {} {} but {} {} was given: they must agree", file,
                                 file_value, axis, flag, flag_value));
}

using experiments::Qkv;

// "heads (axis 0 of the file's [H, N, d])": a 4-D axis (0 batch .. 3 head dim) named by its
// index in the file's own shape, which may lack the leading axes.
std::string file_axis(const experiments::InputFile& f, int axis4, const char* what) {
  const int rank = static_cast<int>(f.file_shape.size());
  static constexpr const char* kNames[] = {"B", "H", "N", "d"};
  std::vector<std::string> names(kNames + (4 - rank), kNames + 4);
  const int own = axis4 - (4 - rank);
  if (own < 0)
    return fmt::format("{} (the file's [{}] has no such axis: 1)", what, fmt::join(names, ", "));
  return fmt::format("{} (axis {} of the file's [{}])", what, own, fmt::join(names, ", "));
}

// Reads --inputs (finite float32 files, k and v of one shape: experiments::read_qkv_npy) and
// takes the sizes not given as flags from them.
Qkv load_inputs(RunOptions& o, std::int64_t max_bytes) {
  experiments::QkvFiles f = experiments::read_qkv_npy(o.inputs, max_bytes);
  const std::string qp = f.q.path, kp = f.k.path, vp = f.v.path;
  const std::string v_dim = file_axis(f.v, 3, "head dim");
  const std::string q_batch = file_axis(f.q, 0, "batch entries"),
                    q_heads = file_axis(f.q, 1, "heads"), k_heads = file_axis(f.k, 1, "heads"),
                    q_tokens = file_axis(f.q, 2, "tokens"), k_tokens = file_axis(f.k, 2, "tokens"),
                    q_dim = file_axis(f.q, 3, "head dim");
  Qkv in{std::move(f.q.tensor), std::move(f.k.tensor), std::move(f.v.tensor)};
  const auto& qs = in.q.shape;
  const auto& ks = in.k.shape;
  if (ks[0] != qs[0])
    throw UsageError(
        fmt::format("{} has batch {} but {} has {}: they must be equal", qp, qs[0], kp, ks[0]));
  if (ks[3] != qs[3])
    throw UsageError(
        fmt::format("{} has head dim {} but {} has {}: they must be equal", qp, qs[3], kp, ks[3]));
  if (qs[1] % ks[1] != 0)
    throw UsageError(
        fmt::format("{} has {} heads and {} has {}: the query heads must be a "
                    "multiple of the K/V heads",
                    qp, qs[1], kp, ks[1]));
  match(o.batch_opt, o.batch, "--batch", qs[0], qp, q_batch);
  match(o.heads_opt, o.geo.heads, "--heads", qs[1], qp, q_heads);
  match(o.kv_heads_opt, o.kv_heads, "--kv-heads", ks[1], kp, k_heads);
  match(o.dim_opt, o.dim, "--d", qs[3], qp, q_dim);
  if (o.n_opt->count() == 0) o.geo.n = qs[2];  // N from the files, as the other sizes
  if (qs[2] != o.geo.n)
    throw UsageError(fmt::format("{} has {} {} but --n {} was given: they must agree", qp, qs[2],
                                 q_tokens, o.geo.n));
  match(o.nk_opt, o.geo.nk, "--nk", ks[2], kp, k_tokens);
  if ((o.nk_opt == nullptr || o.nk_opt->count() == 0) && ks[2] != qs[2])
    o.geo.nk = ks[2];  // keys from the file; queries align bottom-right
  o.batch = qs[0];
  o.geo.heads = static_cast<int>(qs[1]);
  o.kv_heads = static_cast<int>(ks[1]);
  o.dim = qs[3];
  if (o.dv > 0 || in.v.shape[3] != qs[3]) {
    match(o.dv_opt, o.dv, "--dv", in.v.shape[3], vp, v_dim);
    o.dv = in.v.shape[3];
  }
  return in;
}

// The sweep point `spattn run` measures: its options as axes and settings.
experiments::SweepPoint run_point(const RunOptions& o, const Geometry& g, experiments::Executor ex,
                                  std::int64_t budget) {
  experiments::SweepPoint p;
  p.pattern.spec = pattern_spec(o.spec, o.from_deepspeed, g);
  p.pattern.name = o.spec.empty() ? p.pattern.spec : o.spec;
  p.n = g.nq;
  p.nk = g.nk;
  p.head_dim = static_cast<int>(o.dim);
  p.head_dim_v = static_cast<int>(o.dv);
  p.heads = g.heads;
  p.kv_heads = o.kv_heads;
  p.batch = static_cast<int>(o.batch);
  p.threads = o.geo.threads;
  p.block = g.block_q;
  p.block_k = g.block_k;
  p.tile_mode = o.mask_full_tiles ? "partial" : "auto";
  p.executor = ex;
  p.path = parse_execution_path(o.path);
  p.kv_dtype = parse_kv_dtype(o.kv_dtype, "--kv-dtype");
  p.alibi = o.alibi || !o.alibi_slopes.empty();
  p.alibi_slopes_file = o.alibi_slopes;
  p.softcap = o.softcap.value_or(0.0);
  p.sinks_file = o.sinks;
  p.bias_file = o.bias;
  p.scale = o.scale;
  experiments::Settings& st = p.settings;
  st.repeats = o.repeats;
  st.warmup = 1;
  st.seed = o.seed;
  st.memory_bytes = budget;
  st.scale = o.scale;
  st.check = o.check;
  st.check_max_n = std::numeric_limits<std::int64_t>::max();
  st.timeout_seconds = 0;
  if (!o.inputs.empty()) st.inputs = {"npy", o.inputs};
  // A sweep has one seed for all its points; runs appended to one file may differ only in it.
  p.key = experiments::point_key(p) + (o.seed != 0 ? fmt::format(";seed={}", o.seed) : "");
  // What the axes do not say: a fractional soft-capping constant, the files, the scale.
  if (o.softcap && *o.softcap != std::round(*o.softcap))
    p.key += fmt::format(";softcap_value={}", *o.softcap);
  if (!o.alibi_slopes.empty()) p.key += ";alibi_slopes=" + o.alibi_slopes;
  if (!o.sinks.empty()) p.key += ";sinks=" + o.sinks;
  if (!o.bias.empty()) p.key += ";bias=" + o.bias;
  if (o.scale) p.key += fmt::format(";scale={}", *o.scale);
  return p;
}

// The human-readable table of a run's record.
void print_table(const RunOptions& o, const experiments::PreparedPoint& u,
                 const experiments::Measurement& m) {
  const experiments::MeasuredAxes& x = m.axes;
  const experiments::AttentionTimes& t = *m.attention;
  const experiments::LayoutFigures& l = *m.layout;
  const double t_med = t.median(), t_min = t.min(), t_max = t.max();
  const int threads_used = *m.resources.threads_used;
  const std::int64_t workspace = *m.resources.workspace_bytes;
  std::string s;
  auto line = [&s](const char* name, const std::string& value) {
    s += fmt::format("{:<20} {}\n", name, value);
  };
  line("spec", u.layout.spec);
  line("shape", fmt::format("batch {}, heads {} (K/V heads {}), nq {}, nk {}, d {}{}", x.batch,
                            x.heads, x.kv_heads, x.n, x.nk, x.head_dim,
                            x.head_dim_v != x.head_dim ? fmt::format(", d_v {}", x.head_dim_v)
                                                       : std::string()));
  line("tiles", fmt::format("{} x {}; {} kept ({} full, {} partial)", x.block_q, x.block_k,
                            l.kept_tiles, l.full_tiles, l.partial_tiles));
  const std::string executor(experiments::executor_name(x.executor));
  line("executor", o.mask_full_tiles ? executor + " (every Full tile masked)" : executor);
  line("inputs", o.inputs.empty() ? fmt::format("random (seed {})", o.seed) : o.inputs);
  std::vector<std::string> mods;
  if (x.alibi)
    mods.push_back(o.alibi_slopes.empty() ? "ALiBi (paper slopes)" : "ALiBi " + o.alibi_slopes);
  if (x.softcap) mods.push_back(fmt::format("softcap {}", *x.softcap));
  if (x.sinks) mods.push_back("sinks " + o.sinks);
  if (x.bias) mods.push_back("bias " + o.bias);
  if (x.scale) mods.push_back(fmt::format("scale {}", *x.scale));
  if (!mods.empty()) line("score mods", fmt::format("{}", fmt::join(mods, ", ")));
  line("threads", o.geo.threads == 0 ? fmt::format("{} (all cores)", threads_used)
                                     : fmt::format("{}", o.geo.threads));
  line("mask build", fmt::format("{:.3f} ms", l.build_seconds * 1e3));
  if (const auto& sel = m.selection)
    line("selection", fmt::format("{:.3f} ms (select_ms: scoring Q and K and building the "
                                  "layouts, once; {:.3g} GFLOP), end to end {:.3f} ms",
                                  sel->select_ms, sel->flops / 1e9, sel->select_ms + t_med * 1e3));
  line("attention", fmt::format("median {:.3f} ms, min {:.3f}, max {:.3f} ({} repeats after 1 "
                                "warm-up)",
                                t_med * 1e3, t_min * 1e3, t_max * 1e3, o.repeats));
  line("allowed pairs", fmt::format("{}", l.allowed_pairs));
  line("computed pairs", fmt::format("{}  (what the executor's paths evaluate)", l.computed_pairs));
  if (l.paths && x.executor == experiments::Executor::Flash)
    line("paths", path_summary(*l.paths, x.path));
  const std::optional<double> efficiency = m.efficiency();
  line("efficiency", efficiency ? fmt::format("{:.4f}  (allowed / computed)", *efficiency)
                                : std::string("n/a (no tile kept)"));
  line("useful GFLOP/s", fmt::format("{:.3f}  ((2 d + 2 d_v) x allowed pairs / median time)",
                                     m.useful_gflops().value_or(0)));
  line("computed GFLOP/s", fmt::format("{:.3f}  ((2 d + 2 d_v) x computed pairs / median time)",
                                       m.computed_gflops().value_or(0)));
  line("workspace",
       x.executor == experiments::Executor::Flash
           ? fmt::format("{}  (estimate {})", format_bytes(workspace),
                         format_bytes(m.predicted->workspace_bytes))
           : fmt::format("{}  (the materialized nq x nk matrices)", format_bytes(workspace)));
  line("peak memory",
       fmt::format("{}  (max resident set)", format_bytes(*m.resources.peak_rss_bytes)));
  if (const auto& c = m.check) {
    line("check", fmt::format("max abs error {:.3e}, max rel error {:.3e}, LSE error {:.3e}{}",
                              c->max_abs_error, c->max_rel_error, c->max_lse_error,
                              c->finite ? "" : ", NON-FINITE OUTPUT"));
    line("reference time", fmt::format("{:.3f} ms", c->reference_seconds * 1e3));
  }
  if (m.saved) line("saved", fmt::format("{}/o.npy, {}/lse.npy", *m.saved, *m.saved));
  std::cout << s;
}

void run_run(RunOptions o) {
  const std::int64_t budget =
      o.memory_budget.empty()
          ? default_memory_budget()
          : parse_byte_count(o.memory_budget,
                             fmt::format("--memory-budget {}", quoted(o.memory_budget, 60, '\'')),
                             std::int64_t{1} << 62);
  if (o.repeats < 1) throw UsageError(fmt::format("--repeats {} must be >= 1", o.repeats));
  const std::optional<experiments::Executor> executor = experiments::parse_executor(o.executor);
  if (!executor)
    throw UsageError(fmt::format("--executor '{}' is not allowed: use one of {}", o.executor,
                                 experiments::executor_names()));
  if (o.mask_full_tiles && *executor != experiments::Executor::Flash)
    throw UsageError("--mask-full-tiles applies to the flash executor only");
  if (o.softcap && !(std::isfinite(*o.softcap) && *o.softcap > 0))
    throw UsageError(fmt::format("--softcap {}: the soft-capping constant C must be finite and > 0",
                                 *o.softcap));
  if (o.scale && !(std::isfinite(*o.scale) && *o.scale > 0))
    throw UsageError(fmt::format("--scale {}: the softmax scale must be finite and > 0", *o.scale));

  if (o.inputs.empty() && o.n_opt->count() == 0)
    throw UsageError("--n is required (the number of queries), unless --inputs DIR gives it");
  experiments::PointTensors tensors;
  if (!o.inputs.empty()) tensors.inputs = load_inputs(o, budget);
  if (o.kv_heads == 0) o.kv_heads = o.geo.heads;
  if (o.batch < 1) throw UsageError(fmt::format("--batch {} must be >= 1", o.batch));
  if (o.kv_heads < 1 || o.geo.heads % o.kv_heads != 0)
    throw UsageError(fmt::format("--kv-heads {} must divide --heads {} (GQA/MQA groups)",
                                 o.kv_heads, o.geo.heads));
  if (o.dim < 1 || o.dim > kMaxHeadDim)
    throw UsageError(fmt::format("--d {} is not allowed: use 1..{}", o.dim, kMaxHeadDim));
  if (o.dv_opt->count() > 0 && (o.dv < 1 || o.dv > kMaxHeadDim))
    throw UsageError(fmt::format(
        "--dv {} is not allowed: the value head dim d_v must be in 1..{} (default: --d)", o.dv,
        kMaxHeadDim));
  const Geometry g = o.geo.geometry();

  AttentionShape s;
  s.batch = o.batch;
  s.q_heads = g.heads;
  s.kv_heads = o.kv_heads;
  s.nq = g.nq;
  s.nk = g.nk;
  s.dim = o.dim;
  s.dim_v = o.dv > 0 ? o.dv : o.dim;
  // Refuse up front what cannot fit: inputs and outputs, and the reference for --check.
  // q, o and lse per query row, k and v per key row, float32; in double: it can exceed int64.
  const double io =
      4.0 * (static_cast<double>(s.batch) * static_cast<double>(s.q_heads) *
                 static_cast<double>(s.nq) * static_cast<double>(s.dim + s.dim_v + 1) +
             static_cast<double>(s.batch) * static_cast<double>(s.kv_heads) *
                 static_cast<double>(s.nk) * static_cast<double>(s.dim + s.dim_v));
  const std::int64_t io_bytes =
      io >= 9.2e18 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(io);
  check_memory_budget("q, k, v, o and lse together", io_bytes, budget, "--memory-budget");
  if (o.check)
    check_memory_budget("--check (the dense reference executor; leave it out to run without)",
                        reference_memory_bytes(s), budget, "--memory-budget");

  // A sweep of one point: the layout is built once, by prepare_point.
  experiments::PreparedPoint u = experiments::prepare_point(run_point(o, g, *executor, budget));
  u.label = "the run";
  u.raise_hint = "--memory-budget";
  if (o.zigzag && !o.distributed) throw UsageError("--zigzag goes with --distributed");
  if (o.distributed) {
    if (!o.save.empty()) throw UsageError("--save does not combine with --distributed");
    return run_distributed(u, o.json, o.check, o.zigzag);
  }
  experiments::Measurement m = experiments::measure_prepared(u, &tensors);
  m.source = "run";
  if (!o.save.empty()) {
    std::filesystem::create_directories(o.save);
    const auto dir = std::filesystem::path(o.save);
    const Tensor &out = tensors.o, &lse = tensors.lse;
    write_npy((dir / "o.npy").string(), "<f4", {s.batch, s.q_heads, s.nq, s.dim_v},
              out.values.data(), out.values.size() * sizeof(float));
    write_npy((dir / "lse.npy").string(), "<f4", {s.batch, s.q_heads, s.nq}, lse.values.data(),
              lse.values.size() * sizeof(float));
    m.saved = o.save;
  }
  if (o.json) {  // one line: `spattn run ... --json >> runs.jsonl` builds a results file
    std::cout << experiments::to_json(m).dump(-1, ' ', false,
                                              nlohmann::json::error_handler_t::replace)
              << "\n";
    return;
  }
  print_table(o, u, m);
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "run",
      "Run the block-sparse flash executor on a pattern: time, GFLOP/s, memory; --check "
      "compares with the dense reference");
  auto o = std::make_shared<RunOptions>();
  sub->add_option("spec", o->spec, "pattern spec string, e.g. 'sliding(1024) | sink(4)'");
  sub->add_option("--from-deepspeed", o->from_deepspeed,
                  "DeepSpeed config JSON to use instead of a spec: its ds_* equivalent")
      ->check(non_empty());
  o->geo.add_to(*sub);
  sub->get_option("--threads")
      ->description(
          "threads for the layout build and the executor (0: all cores); results do not depend on "
          "it");
  o->heads_opt = sub->get_option("--heads");
  o->n_opt = sub->get_option("--n")->required(false);  // --inputs may give it
  o->nk_opt = sub->get_option("--nk");
  o->dim_opt = sub->add_option("--d,--head-dim", o->dim, "head dim, 1..256")
                   ->capture_default_str()
                   ->transform(decimal(1, 256));
  o->dv_opt = sub->add_option("--dv", o->dv,
                              "value head dim d_v of v and the output, 1..256 (default: --d; q "
                              "and k keep --d, e.g. --d 192 --dv 128 as in DeepSeek MLA)");
  o->kv_heads_opt =
      sub->add_option("--kv-heads", o->kv_heads, "K/V heads, dividing --heads (default: --heads)")
          ->transform(decimal(1, kMaxHeads));
  o->batch_opt = sub->add_option("--batch", o->batch, "batch size")
                     ->capture_default_str()
                     ->transform(decimal(1, std::numeric_limits<int>::max()));
  sub->add_option("--executor", o->executor,
                  "flash (the block-sparse executor) or textbook (the dense materialized "
                  "baseline)")
      ->capture_default_str();
  sub->add_option("--repeats", o->repeats, "timed runs after one warm-up")
      ->capture_default_str()
      ->transform(decimal(1, 100000));
  sub->add_option("--seed", o->seed, "seed of the random N(0, 1) inputs")
      ->capture_default_str()
      ->transform(decimal(0, std::numeric_limits<std::int64_t>::max()));
  sub->add_flag("--check", o->check,
                "compare with the dense reference executor (max abs and relative error)");
  sub->add_flag("--distributed", o->distributed,
                "under mpirun: context-parallel attention over the ranks (contiguous shards; "
                "each rank sends only the K/V rows other ranks' kept tiles need); prints per-rank "
                "time, bytes and messages");
  sub->add_flag("--zigzag", o->zigzag,
                "with --distributed: rank r holds chunks r and 2P-1-r of 2P (balances causal "
                "patterns) instead of one contiguous shard");
  sub->add_flag("--json", o->json,
                "print the measurement record (one JSON line, experiments/README.md) instead of a "
                "table");
  sub->add_flag("--mask-full-tiles", o->mask_full_tiles,
                "run every kept Full tile through the masked kernel with an all-ones mask (same "
                "output; measures the cost of masking)");
  sub->add_option("--path", o->path,
                  "execution path of the flash executor: " + execution_path_names() +
                      " (auto: the cheapest per tile and row; the others force one, for "
                      "measuring it; the output is exact on every path)")
      ->capture_default_str();
  sub->add_option("--kv-dtype", o->kv_dtype,
                  "K/V storage: f32, bf16 (round to nearest even) or int8 (one scale per token); "
                  "queries and accumulation stay float32, --check compares with the reference on "
                  "the rounded K/V")
      ->capture_default_str();
  sub->add_flag("--alibi", o->alibi,
                "ALiBi: add -m_h |p - j| to each scaled score, m_h the paper's slope of query "
                "head h (after --softcap, before the mask)");
  sub->add_option("--alibi-slopes", o->alibi_slopes,
                  "ALiBi with these slopes: a 1-D .npy file of one value per query head (implies "
                  "--alibi)")
      ->check(non_empty());
  sub->add_option("--softcap", o->softcap,
                  "soft-capping: each scaled score s becomes C tanh(s / C), C > 0 (before ALiBi "
                  "and the mask)");
  sub->add_option("--sinks", o->sinks,
                  "learned sink logits: a 1-D .npy file of one value per query head; each row's "
                  "softmax denominator gains exp(sink_h)")
      ->check(non_empty());
  sub->add_option("--bias", o->bias,
                  "additive bias on the scaled scores (after --softcap, with ALiBi, before the "
                  "mask): a float32 .npy of [heads or 1, nq, nk] (one value per pair; refused "
                  "beyond --memory-budget) or [heads or 1, q_blocks, k_blocks] (one per tile)")
      ->check(non_empty());
  sub->add_option("--scale", o->scale, "softmax scale (default 1 / sqrt(d))");
  sub->add_option("--inputs", o->inputs,
                  "read q.npy, k.npy, v.npy (float32, float16 or bfloat16 as uint16; [B, H, N, d], "
                  "[H, N, d] or [N, d]) from this directory; sizes not given as flags come from "
                  "the files")
      ->check(non_empty());
  sub->add_option("--save", o->save, "write o.npy [B, H, nq, d] and lse.npy [B, H, nq] here")
      ->check(non_empty());
  sub->add_option("--memory-budget", o->memory_budget,
                  "refuse work estimated above this many bytes, e.g. 4G (default: 3/4 of "
                  "available memory)")
      ->check(non_empty());
  return {sub, [o] { run_run(*o); }};
}

}  // namespace spattn::cli
