// The one measure path (see measure.hpp): prepare a point once (validate, build the layout, cost,
// predict), then measure it with the executor it names.
#include "spattn/experiments/measure.hpp"

#include <fmt/format.h>
#include <oneapi/tbb/info.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "measure_decode.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/per_batch.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/attention/select/select.hpp"
#include "spattn/attention/textbook.hpp"
#include "spattn/experiments/fidelity.hpp"
#include "spattn/experiments/oracle_ceiling.hpp"
#include "spattn/experiments/timing.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/io/npy.hpp"

namespace spattn::experiments {
namespace {

// The reference executor (scalar double loops, the pattern's allows() per pair) runs about this
// many times slower than predict_gflops assumes of the flash executor: `spattn run causal --n 1024
// --heads 8 --check` took 1.08 s for its 2.1 GFLOP, ~2 GFLOP/s, on the 2-core test machine.
constexpr double kReferenceSlowdown = 50;

// One float per query head from a 1-D .npy file (`what` names the option in messages).
std::vector<float> per_head_file(const std::string& path, const char* what, std::int64_t heads) {
  const NpyArray a = read_npy(path, std::int64_t{1} << 24);
  if (a.shape.size() != 1 || a.shape[0] != heads)
    throw UsageError(
        fmt::format("{} {}: shape [{}] but there are {} query heads: give a 1-D "
                    "array of {} values, one per query head",
                    what, path, fmt::join(a.shape, ", "), heads, heads));
  std::vector<float> out;
  for (std::int64_t h = 0; h < heads; ++h) {
    const double x = a.at(h);
    if (!std::isfinite(x))
      throw UsageError(
          fmt::format("{} {}: value {} (query head {}) is not finite", what, path, x, h));
    out.push_back(static_cast<float>(x));
  }
  return out;
}

// The additive bias of --bias FILE.npy for geometry g: [heads or 1, nq, nk] per element, else
// [heads or 1, q_blocks, k_blocks] per tile; read within `limit` bytes (BudgetError beyond).
ScoreBias bias_file(const std::string& path, const Geometry& g, std::int64_t limit) {
  const NpyArray a = read_npy(path, limit / 2);  // the file and its float copy
  return score_bias_for(a.as_float32(), a.shape, g, "--bias " + path);
}

// The point's score modifications (checked against its query heads and geometry).
ScoreMod score_mod_of(const SweepPoint& p, const Geometry& g, std::int64_t limit) {
  ScoreMod m;
  if (!p.alibi_slopes_file.empty())
    m.alibi_slopes = per_head_file(p.alibi_slopes_file, "--alibi-slopes", p.heads);
  else if (p.alibi)
    m.alibi_slopes = alibi_slopes(p.heads);
  if (p.softcap != 0) m.softcap = static_cast<float>(p.softcap);
  if (!p.sinks_file.empty()) m.sinks = per_head_file(p.sinks_file, "--sinks", p.heads);
  if (!p.bias_file.empty()) m.bias = bias_file(p.bias_file, g, limit);
  check_score_mod(m, p.heads, g.nq, g.nk);
  return m;
}

std::optional<float> scale_of(const SweepPoint& p) {
  if (!p.scale) return std::nullopt;
  return static_cast<float>(*p.scale);
}

std::int64_t to_bytes(double bytes) {
  return bytes >= 9.2e18 ? std::numeric_limits<std::int64_t>::max()
                         : static_cast<std::int64_t>(bytes);
}

void validate(const SweepPoint& p) {
  const Settings& st = p.settings;
  validate_phase(p);
  if (p.phase == "prefill" && p.kv_dtype != KVDtype::F32 && p.executor != Executor::Flash)
    throw UsageError(fmt::format(
        "point {}: kv_dtype '{}' applies to the flash executor only, not {}: use kv_dtype f32",
        p.key, kv_dtype_name(p.kv_dtype), executor_name(p.executor)));
  if (p.tile_mode != "auto" && p.tile_mode != "partial")
    throw UsageError(fmt::format("point {}: tile_mode '{}' is not allowed: use auto or partial",
                                 p.key, p.tile_mode));
  if (p.path != ExecutionPath::Auto && p.executor != Executor::Flash)
    throw UsageError(fmt::format("point {}: path '{}' applies to the flash executor only, not {}",
                                 p.key, execution_path_name(p.path), executor_name(p.executor)));
  if (p.tile_mode == "partial" && p.executor != Executor::Flash)
    throw UsageError(
        fmt::format("point {}: tile_mode 'partial' applies to the flash executor only, not {}",
                    p.key, executor_name(p.executor)));
  if (p.head_dim < 1 || p.head_dim > kMaxHeadDim)
    throw UsageError(fmt::format("point {}: head_dim {} is not allowed: use 1..{}", p.key,
                                 p.head_dim, kMaxHeadDim));
  if (p.head_dim_v < 0 || p.head_dim_v > kMaxHeadDim)
    throw UsageError(fmt::format("point {}: d_v (dv) {} is not allowed: use 1..{} (0: head_dim)",
                                 p.key, p.head_dim_v, kMaxHeadDim));
  const int kv_heads = p.kv_heads == 0 ? p.heads : p.kv_heads;
  if (p.heads < 1 || kv_heads < 1 || p.heads % kv_heads != 0)
    throw UsageError(
        fmt::format("point {}: kv_heads {} must be >= 1 and divide heads {} (GQA/MQA groups)",
                    p.key, kv_heads, p.heads));
  if (p.batch < 1) throw UsageError(fmt::format("point {}: batch {} must be >= 1", p.key, p.batch));
  if (!(p.softcap >= 0) || !std::isfinite(p.softcap))
    throw UsageError(
        fmt::format("point {}: softcap {} is not allowed: use C > 0 (0: none)", p.key, p.softcap));
  if (p.scale && !(std::isfinite(*p.scale) && *p.scale > 0))
    throw UsageError(fmt::format("point {}: scale {} must be finite and > 0", p.key, *p.scale));
  if (p.threads < 0)
    throw UsageError(
        fmt::format("point {}: threads {} must be >= 0 (0: all cores)", p.key, p.threads));
  if (p.nk < 0 || p.block_k < 0)
    throw UsageError(fmt::format("point {}: nk {} and block_k {} must be >= 0 (0: n, block)", p.key,
                                 p.nk, p.block_k));
  if (st.repeats < 1 || st.warmup < 0)
    throw UsageError(fmt::format("point {}: repeats {} must be >= 1 and warmup {} >= 0", p.key,
                                 st.repeats, st.warmup));
  if (st.inputs.kind != "random" && st.inputs.kind != "synthetic" && st.inputs.kind != "planted" &&
      st.inputs.kind != "npy")
    throw UsageError(
        fmt::format("point {}: inputs '{}' is not allowed: use random, synthetic, planted or npy",
                    p.key, st.inputs.kind));
  if (!(st.predict_gflops > 0))
    throw UsageError(
        fmt::format("point {}: predict_gflops {} must be > 0", p.key, st.predict_gflops));
  if (st.memory_bytes < 0)
    throw UsageError(
        fmt::format("point {}: memory {} must be >= 0 (0: default)", p.key, st.memory_bytes));
}

Prediction predict(const PreparedPoint& u) {
  const AttentionCost& c = u.cost;
  const Settings& st = u.point.settings;
  const bool flash = u.point.executor == Executor::Flash;
  Prediction r;
  r.useful_flops = c.useful_flops;
  r.computed_flops = c.computed_flops;
  r.score_mod_flops = c.score_mod_flops;
  r.bytes_read = c.bytes_read;
  r.bytes_written = c.bytes_written;
  r.input_bytes = c.input_bytes;
  r.output_bytes = c.output_bytes;
  // The textbook executor's estimate holds its own outputs too.
  r.workspace_bytes = flash ? c.flash_workspace_bytes : c.textbook_bytes;
  double bytes = static_cast<double>(c.input_bytes) + static_cast<double>(c.layout_bytes) +
                 static_cast<double>(r.workspace_bytes) +
                 static_cast<double>(u.input_scratch_bytes);
  if (flash) bytes += static_cast<double>(c.output_bytes);
  double flops =
      (st.warmup + st.repeats) * ((flash ? c.computed_flops : c.dense_flops) + c.score_mod_flops);
  if (u.fidelity) {  // dense O and LSE beside the sparse ones, and the dense layout
    bytes += static_cast<double>(c.output_bytes) + static_cast<double>(dense_layout_bytes(u.g));
    flops += c.dense_flops;
    // The oracle ceiling: one query block's logits (double) per thread, and the scores again.
    if (!u.mod.any()) {
      const int threads = u.point.threads > 0 ? u.point.threads : tbb::info::default_concurrency();
      bytes += 8.0 * static_cast<double>(u.g.block_q) * static_cast<double>(u.g.nk) * threads;
      flops += 0.5 * c.dense_flops;
    }
  }
  if (u.check) {
    bytes += static_cast<double>(c.reference_bytes);
    flops += kReferenceSlowdown * c.dense_flops;
  }
  if (u.selection) flops += u.selection->flops;
  r.memory_bytes = to_bytes(bytes);
  r.seconds = flops / (st.predict_gflops * 1e9);
  return r;
}

std::int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<std::int64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

LayoutFigures layout_figures(const Layout& layout, const AttentionCost& c) {
  LayoutFigures f;
  f.allowed_pairs = c.allowed_pairs;
  f.computed_pairs = c.computed_pairs;
  f.kept_tiles = c.kept_tiles;
  f.full_tiles = c.full_tiles;
  f.partial_tiles = c.partial_tiles;
  f.layout_bytes = c.layout_bytes;
  f.distinct_head_layouts = static_cast<int>(layout.distinct.size());
  f.scanned = layout.scanned;
  f.scanned_part = layout.scanned ? layout.scanned_part : "";
  f.build_seconds = layout.build_seconds;
  PathFigures paths;
  paths.tile_area_pairs = c.tile_area_pairs;
  paths.whole_pairs = c.paths.whole;
  paths.run_pairs = c.paths.run;
  paths.gather_pairs = c.paths.gather;
  paths.diagonal_pairs = c.paths.diagonal;
  paths.skipped_tiles = c.paths.skipped_tiles;
  paths.diagonal_rows = c.paths.diagonal_rows;
  f.paths = paths;
  return f;
}

// Runs the point's executor `warmup` + `repeats` times into t.o and t.lse.
AttentionTimes run_executor(const PreparedPoint& u, PointTensors& t, AttentionStats& stats) {
  const Qkv& in = t.inputs;
  const Settings& st = u.point.settings;
  AttentionOptions ao;
  ao.threads = u.point.threads;
  ao.mask_full_tiles = u.point.tile_mode == "partial";
  ao.path = u.point.path;
  ao.mod = u.mod;
  ao.scale = scale_of(u.point);
  TextbookOptions to;
  to.mod = u.mod;
  to.scale = ao.scale;
  to.threads = u.point.threads;
  to.max_bytes = u.limit;
  if (u.point.executor == Executor::Flash) {
    t.o = Tensor(u.s.batch, u.s.q_heads, u.s.nq, u.s.value_dim());
    t.lse = Tensor(u.s.batch, u.s.q_heads, u.s.nq, 1);
  }
  // Narrow K/V: rounded once, before the timed calls; the float32 inputs then hold the rounded
  // values, which the reference check and fidelity compare against.
  KVTensor kn, vn;
  if (u.point.kv_dtype != KVDtype::F32) {
    kn = quantize_kv(in.k.view(), u.point.kv_dtype);
    vn = quantize_kv(in.v.view(), u.point.kv_dtype);
    t.inputs.k = dequantize_kv(kn.view());
    t.inputs.v = dequantize_kv(vn.view());
  }
  const RepeatTimes r = time_repeats(
      [&] {
        if (u.point.kv_dtype != KVDtype::F32) {
          stats =
              attention(in.q.view(), kn.view(), vn.view(), u.layout, t.o.view(), t.lse.view(), ao);
          return;
        }
        if (u.point.executor == Executor::Flash && u.batch_layouts.size() > 1) {
          stats = attention_per_batch(in.q.view(), in.k.view(), in.v.view(), u.batch_layouts,
                                      t.o.view(), t.lse.view(), ao);
          return;
        }
        if (u.point.executor == Executor::Flash) {
          stats = attention(in.q.view(), in.k.view(), in.v.view(), u.layout, t.o.view(),
                            t.lse.view(), ao);
          return;
        }
        AttentionResult res =
            textbook_attention(in.q.view(), in.k.view(), in.v.view(), u.layout, to);
        t.o = std::move(res.o);
        t.lse = std::move(res.lse);
        stats = res.stats;
      },
      st.warmup, st.repeats);
  return AttentionTimes{st.warmup, r.all};
}

// The reference's options for the point: its memory limit, score modifications and scale.
ReferenceOptions reference_options(const PreparedPoint& u) {
  ReferenceOptions ro;
  ro.max_bytes = u.limit;
  ro.mod = u.mod;
  if (u.point.scale) ro.scale = *u.point.scale;
  return ro;
}

// Selectors: each batch against the reference on its resolved pattern's ground truth; the
// figures are the maxima over batches.
CheckFigures check_selected(const PreparedPoint& u, const PointTensors& t) {
  using Clock = std::chrono::steady_clock;
  const ReferenceOptions ro = reference_options(u);
  const auto t0 = Clock::now();
  CheckFigures c;
  const Qkv& in = t.inputs;
  for (std::size_t b = 0; b < u.batch_patterns.size(); ++b) {
    const Pattern& p = *u.batch_patterns[b];
    const auto bi = static_cast<std::int64_t>(b);
    const ReferenceResult ref =
        reference_attention(batch_slice(in.q.view(), bi), batch_slice(in.k.view(), bi),
                            batch_slice(in.v.view(), bi), p, u.g, ro);
    const ConstTensorView o = batch_slice(t.o.view(), bi), lse = batch_slice(t.lse.view(), bi);
    const ReferenceError e = compare_to_reference(o, lse, ref);
    c.max_abs_error = std::max(c.max_abs_error, e.max_abs);
    c.max_rel_error = std::max(c.max_rel_error, e.max_rel);
    c.rel_l2_error = std::max(c.rel_l2_error, relative_l2_error(o, ref));
    c.max_lse_error = std::max(c.max_lse_error, e.lse_max);
    c.finite = c.finite && e.finite;
  }
  c.reference_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return c;
}

CheckFigures check_against_reference(const PreparedPoint& u, const PointTensors& t) {
  if (!u.batch_patterns.empty()) return check_selected(u, t);
  using Clock = std::chrono::steady_clock;
  const ReferenceOptions ro = reference_options(u);
  const auto t0 = Clock::now();
  const ReferenceResult ref = reference_attention(t.inputs.q.view(), t.inputs.k.view(),
                                                  t.inputs.v.view(), *u.pattern, u.g, ro);
  CheckFigures c;
  c.reference_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const ReferenceError e = compare_to_reference(t.o.view(), t.lse.view(), ref);
  c.max_abs_error = e.max_abs;
  c.max_rel_error = e.max_rel;
  c.rel_l2_error = relative_l2_error(t.o.view(), ref);
  c.max_lse_error = e.lse_max;
  c.finite = e.finite;
  return c;
}

// The share of the planted needles (batch x query head x needle) whose (row, key) pair the
// batch's layout keeps (one layout per batch, or one shared by all: the same share).
double needle_hit(const std::vector<const Layout*>& layouts, const PlantedSpec& spec) {
  std::int64_t hits = 0, total = 0;
  for (const Layout* l : layouts)
    for (std::int64_t h = 0; h < l->geometry.heads; ++h)
      for (const auto& [row, key] : spec.needles) {
        ++total;
        hits += l->head(static_cast<int>(h)).allows(row, key) ? 1 : 0;
      }
  return total > 0 ? static_cast<double>(hits) / static_cast<double>(total) : 0.0;
}

FidelityFigures fidelity_against_dense(const PreparedPoint& u, const PointTensors& t) {
  const SweepPoint& p = u.point;
  const AttentionShape& s = u.s;
  Tensor dense_o(s.batch, s.q_heads, s.nq, s.value_dim()), dense_lse(s.batch, s.q_heads, s.nq, 1);
  const std::string& baseline = p.pattern.fidelity_baseline.empty() ? p.settings.fidelity_baseline
                                                                    : p.pattern.fidelity_baseline;
  baseline_attention(t.inputs.q.view(), t.inputs.k.view(), t.inputs.v.view(), baseline, u.g,
                     p.threads, u.limit, dense_o.view(), dense_lse.view(), u.mod, scale_of(p));
  const Fidelity f = compare_to_dense(t.o.view(), t.lse.view(), dense_o.view(), dense_lse.view());
  FidelityFigures out;
  out.rel_l2_error = f.rel_l2_error;
  out.recall_mean = f.recall_mean;
  out.recall_min = f.recall_min;
  out.inputs = input_name(p.settings.inputs);
  out.baseline = baseline;
  std::vector<const Layout*> layouts;
  for (const Layout& l : u.batch_layouts) layouts.push_back(&l);
  if (layouts.empty()) layouts.push_back(&u.layout);
  if (!u.mod.any()) {
    BuildOptions bo;
    bo.threads = p.threads;
    bo.max_layout_bytes = u.limit;
    const Layout base = build_layout(*parse_spec(baseline), u.g, bo);
    const double scale = p.scale ? *p.scale : 1.0 / std::sqrt(static_cast<double>(s.dim));
    const OracleCeiling c =
        oracle_ceiling(t.inputs.q.view(), t.inputs.k.view(), layouts, base, scale, p.threads);
    out.oracle_recall_mean = c.recall_mean;
    out.oracle_recall_min = c.recall_min;
  }
  if (p.settings.inputs.kind == "planted") out.needle_hit = needle_hit(layouts, planted_spec(s));
  return out;
}

// A point whose spec holds a selector: makes its inputs, selects on them (timed: the selection's
// figures) and costs the batches' layouts together.
void select_point(PreparedPoint& u, const BuildOptions& bo) {
  const SweepPoint& p = u.point;
  if (u.point.executor != Executor::Flash && u.s.batch > 1)
    throw UsageError(fmt::format(
        "{}: '{}' selects per batch, which the {} executor cannot take with batch {}: use the "
        "flash executor or batch 1",
        u.label, p.pattern.spec, executor_name(p.executor), u.s.batch));
  if (p.kv_dtype != KVDtype::F32 && u.s.batch > 1)
    throw UsageError(
        fmt::format("{}: '{}' selects per batch, which kv_dtype '{}' cannot take with "
                    "batch {}: use batch 1 or kv_dtype f32",
                    u.label, p.pattern.spec, kv_dtype_name(p.kv_dtype), u.s.batch));
  u.inputs = std::make_shared<Qkv>(make_inputs(p.settings.inputs, u.s, p.settings.seed, u.limit));
  SelectedLayouts sel = select_layouts(u.pattern, u.inputs->q.view(), u.inputs->k.view(), u.g, bo);
  u.batch_patterns = std::move(sel.patterns);
  u.batch_layouts = std::move(sel.layouts);
  u.layout = u.batch_layouts.front();
  u.selection = SelectionFigures{sel.seconds * 1e3, sel.cost.flops, sel.cost.bytes};
  u.cost = attention_cost(u.layout, u.s, p.threads, p.path);
  if (u.batch_layouts.size() < 2) return;
  // Work and traffic summed over the batches' layouts (each costed as batch 1).
  AttentionShape one = u.s;
  one.batch = 1;
  AttentionCost& c = u.cost;
  c.allowed_pairs = c.computed_pairs = c.tile_area_pairs = 0;
  c.kept_tiles = c.full_tiles = c.partial_tiles = 0;
  c.paths = PathPairs{};
  c.useful_flops = c.computed_flops = c.bytes_read = c.bytes_written = 0;
  c.layout_bytes = 0;
  for (const Layout& l : u.batch_layouts) {
    const AttentionCost b = attention_cost(l, one, p.threads, p.path);
    c.allowed_pairs += b.allowed_pairs;
    c.computed_pairs += b.computed_pairs;
    c.tile_area_pairs += b.tile_area_pairs;
    c.paths += b.paths;
    c.kept_tiles += b.kept_tiles;
    c.full_tiles += b.full_tiles;
    c.partial_tiles += b.partial_tiles;
    c.useful_flops += b.useful_flops;
    c.computed_flops += b.computed_flops;
    c.bytes_read += b.bytes_read;
    c.bytes_written += b.bytes_written;
    c.layout_bytes += b.layout_bytes;
  }
  c.efficiency = c.computed_pairs > 0
                     ? static_cast<double>(c.allowed_pairs) / static_cast<double>(c.computed_pairs)
                     : 1.0;
}

}  // namespace

PreparedPoint prepare_point(const SweepPoint& p) {
  validate(p);
  PreparedPoint u;
  u.point = p;
  u.label = fmt::format("point {}", p.key);
  const Settings& st = p.settings;
  u.pattern = parse_spec(p.pattern.spec);
  u.g.nq = p.n;
  u.g.nk = p.nk > 0 ? p.nk : p.n;
  u.g.heads = p.heads;
  u.g.block_q = p.pattern.block > 0 ? p.pattern.block : p.block;
  u.g.block_k = p.block_k > 0 ? p.block_k : u.g.block_q;
  u.g.validate();
  u.mod = score_mod_of(p, u.g, memory_limit(st));
  u.s.batch = p.batch;
  u.s.q_heads = p.heads;
  u.s.kv_heads = p.kv_heads == 0 ? p.heads : p.kv_heads;
  u.s.nq = u.g.nq;
  u.s.nk = u.g.nk;
  u.s.dim = p.head_dim;
  u.s.dim_v = p.head_dim_v > 0 ? p.head_dim_v : p.head_dim;
  u.limit = memory_limit(st);
  u.check = st.check && p.n <= st.check_max_n;
  u.fidelity = st.fidelity && p.n <= st.fidelity_max_n;
  if (p.phase == "decode") {  // the cache policy decides what is read: no layout to build
    u.check = false;
    u.prediction = predict_decode(p, u.fidelity);
    return u;
  }
  u.input_scratch_bytes = st.inputs.kind == "npy" ? check_npy_inputs(st.inputs, u.s)
                                                  : input_scratch_bytes(st.inputs, u.s);
  if (p.kv_dtype != KVDtype::F32)  // the narrow K and V beside the float32 inputs
    u.input_scratch_bytes +=
        2 * u.s.batch * u.s.kv_heads * u.s.nk * kv_row_bytes(p.kv_dtype, u.s.dim);
  BuildOptions bo;
  bo.threads = p.threads;
  bo.max_layout_bytes = u.limit;
  if (u.pattern->needs_inputs()) {
    select_point(u, bo);
  } else {
    u.layout = build_layout(*u.pattern, u.g, bo);
    u.cost = attention_cost(u.layout, u.s, p.threads, p.path);
  }
  add_score_mod_cost(u.cost, u.mod, u.s);
  u.figures = layout_figures(u.layout, u.cost);
  u.prediction = predict(u);
  return u;
}

Prediction predict_point(const SweepPoint& p) {
  return prepare_point(p).prediction;
}

Measurement point_record(const SweepPoint& p) {
  Measurement m;
  m.source = "sweep";
  m.key = p.key;
  m.index = p.index;
  MeasuredAxes& x = m.axes;
  x.pattern = p.pattern.name;
  x.spec = p.pattern.spec;
  x.n = p.n;
  x.nk = p.nk > 0 ? p.nk : p.n;
  x.head_dim = p.head_dim;
  x.head_dim_v = p.head_dim_v > 0 ? p.head_dim_v : p.head_dim;
  x.heads = p.heads;
  x.kv_heads = p.kv_heads == 0 ? p.heads : p.kv_heads;
  x.batch = p.batch;
  x.threads = p.threads;
  x.block_q = p.pattern.block > 0 ? p.pattern.block : p.block;
  x.block_k = p.block_k > 0 ? p.block_k : x.block_q;
  x.tile_mode = p.tile_mode;
  x.executor = p.executor;
  x.path = std::string(execution_path_name(p.path));
  x.inputs = input_name(p.settings.inputs);
  x.seed = p.settings.seed;
  x.alibi = p.alibi || !p.alibi_slopes_file.empty();
  if (p.softcap > 0) x.softcap = p.softcap;
  x.sinks = !p.sinks_file.empty();
  x.bias = !p.bias_file.empty();
  x.scale = p.scale;
  x.phase = p.phase;
  x.kv_dtype = kv_dtype_name(p.kv_dtype);
  if (p.phase == "decode") x.cache = p.cache;
  return m;
}

Measurement measure_prepared(const PreparedPoint& u, PointTensors* tensors) {
  const SweepPoint& p = u.point;
  // Refuse up front what the prediction says cannot fit, rather than fail half-way.
  check_memory_budget(fmt::format("{} (inputs, outputs, layout, workspace{}{})", u.label,
                                  u.fidelity ? ", dense output for fidelity" : "",
                                  u.check ? ", reference for the check" : ""),
                      u.prediction.memory_bytes, u.limit, u.raise_hint);
  if (p.phase == "decode") {
    Measurement m = measure_decode(p, u.fidelity, u.limit);
    const Measurement r = point_record(p);
    m.source = r.source;
    m.key = r.key;
    m.index = r.index;
    m.axes = r.axes;
    m.predicted = u.prediction;
    m.resources.peak_rss_bytes = peak_rss_bytes();
    return m;
  }
  PointTensors own;
  PointTensors& t = tensors != nullptr ? *tensors : own;
  if (t.inputs.q.values.empty() && u.inputs != nullptr && !u.inputs->q.values.empty())
    t.inputs = std::move(*u.inputs);  // a selector's: the inputs it selected on
  if (t.inputs.q.values.empty())
    t.inputs = make_inputs(p.settings.inputs, u.s, p.settings.seed, u.limit);

  Measurement m = point_record(p);
  m.layout = u.figures;
  m.predicted = u.prediction;
  AttentionStats stats;
  m.attention = run_executor(u, t, stats);
  check_output_finite(t.o.view(), t.lse.view());
  m.resources.workspace_bytes = stats.workspace_bytes;
  m.resources.tasks = stats.tasks;
  m.resources.split_rows = stats.split_rows;
  m.resources.threads_used = p.threads > 0 ? p.threads : tbb::info::default_concurrency();
  if (u.check) m.check = check_against_reference(u, t);
  if (u.fidelity) m.fidelity = fidelity_against_dense(u, t);
  m.selection = u.selection;
  m.resources.peak_rss_bytes = peak_rss_bytes();
  return m;
}

Measurement measure_point(const SweepPoint& p) {
  return measure_prepared(prepare_point(p));
}

}  // namespace spattn::experiments
