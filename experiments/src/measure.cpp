// One sweep point in this process: layout build (timed), flash executor (warm-up, timed
// repeats), reference check and fidelity where they fit (see measure.hpp).
#include "spattn/experiments/measure.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "spattn/attention/attention.hpp"
#include "spattn/attention/cost.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/experiments/fidelity.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/timing.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::experiments {
namespace {

constexpr const char* kRaise = "the experiment's `memory` setting";

// The reference executor (scalar double loops, the pattern's allows() per pair) runs about this
// many times slower than predict_gflops assumes of the flash executor: `spattn run causal --n 1024
// --heads 8 --check` took 1.08 s for its 2.1 GFLOP, ~2 GFLOP/s, on the 2-core test machine.
constexpr double kReferenceSlowdown = 50;

std::int64_t to_bytes(double bytes) {
  return bytes >= 9.2e18 ? std::numeric_limits<std::int64_t>::max()
                         : static_cast<std::int64_t>(bytes);
}

// What a point is, validated: its pattern, geometry, attention shape and memory limit.
struct Setup {
  PatternPtr pattern;
  Geometry g;
  AttentionShape s;
  std::int64_t limit = 0;
  bool check = false, fidelity = false, mask_full = false;
};

Setup setup(const SweepPoint& p) {
  const Settings& st = p.settings;
  if (p.tile_mode != "auto" && p.tile_mode != "partial")
    throw UsageError(fmt::format("point {}: tile_mode '{}' is not allowed: use auto or partial",
                                 p.key, p.tile_mode));
  if (p.head_dim < 1 || p.head_dim > kMaxHeadDim)
    throw UsageError(fmt::format("point {}: head_dim {} is not allowed: use 1..{}", p.key,
                                 p.head_dim, kMaxHeadDim));
  const int kv_heads = p.kv_heads == 0 ? p.heads : p.kv_heads;
  if (p.heads < 1 || kv_heads < 1 || p.heads % kv_heads != 0)
    throw UsageError(
        fmt::format("point {}: kv_heads {} must be >= 1 and divide heads {} (GQA/MQA groups)",
                    p.key, kv_heads, p.heads));
  if (p.batch < 1) throw UsageError(fmt::format("point {}: batch {} must be >= 1", p.key, p.batch));
  if (p.threads < 0)
    throw UsageError(
        fmt::format("point {}: threads {} must be >= 0 (0: all cores)", p.key, p.threads));
  if (st.repeats < 1 || st.warmup < 0)
    throw UsageError(fmt::format("point {}: repeats {} must be >= 1 and warmup {} >= 0", p.key,
                                 st.repeats, st.warmup));
  if (st.inputs.kind != "random" && st.inputs.kind != "synthetic" && st.inputs.kind != "npy")
    throw UsageError(
        fmt::format("point {}: inputs '{}' is not allowed: use random, synthetic or "
                    "npy",
                    p.key, st.inputs.kind));
  if (!(st.predict_gflops > 0))
    throw UsageError(
        fmt::format("point {}: predict_gflops {} must be > 0", p.key, st.predict_gflops));
  if (st.memory_bytes < 0)
    throw UsageError(
        fmt::format("point {}: memory {} must be >= 0 (0: default)", p.key, st.memory_bytes));
  Setup u;
  u.pattern = parse_spec(p.pattern.spec);
  u.g.nq = u.g.nk = p.n;
  u.g.heads = p.heads;
  u.g.block_q = u.g.block_k = p.pattern.block > 0 ? p.pattern.block : p.block;
  u.g.validate();
  u.s.batch = p.batch;
  u.s.q_heads = p.heads;
  u.s.kv_heads = kv_heads;
  u.s.nq = u.s.nk = p.n;
  u.s.dim = p.head_dim;
  u.limit = memory_limit(st);
  u.check = st.check && p.n <= st.check_max_n;
  u.fidelity = st.fidelity && p.n <= st.fidelity_max_n;
  u.mask_full = p.tile_mode == "partial";
  return u;
}

Layout build(const Setup& u, int threads) {
  BuildOptions bo;
  bo.threads = threads;
  bo.max_layout_bytes = u.limit;
  return build_layout(*u.pattern, u.g, bo);
}

PointPrediction predict(const SweepPoint& p, const Setup& u, const AttentionCost& c) {
  PointPrediction r;
  r.allowed_pairs = c.allowed_pairs;
  r.computed_pairs = c.computed_pairs;
  r.useful_flops = c.useful_flops;
  r.computed_flops = c.computed_flops;
  double bytes = static_cast<double>(c.input_bytes) + static_cast<double>(c.output_bytes) +
                 static_cast<double>(c.layout_bytes) +
                 static_cast<double>(c.flash_workspace_bytes) +
                 static_cast<double>(input_scratch_bytes(p.settings.inputs, u.s));
  const int calls = p.settings.warmup + p.settings.repeats;
  double flops = calls * c.computed_flops;
  if (u.fidelity) {  // dense O and LSE beside the sparse ones, and the dense layout
    bytes += static_cast<double>(c.output_bytes) + static_cast<double>(dense_layout_bytes(u.g));
    flops += c.dense_flops;
  }
  if (u.check) {
    bytes += static_cast<double>(c.reference_bytes);
    flops += kReferenceSlowdown * c.dense_flops;
  }
  r.memory_bytes = to_bytes(bytes);
  r.seconds = flops / (p.settings.predict_gflops * 1e9);
  return r;
}

}  // namespace

PointPrediction predict_point(const SweepPoint& p) {
  const Setup u = setup(p);
  const Layout layout = build(u, p.threads);
  return predict(p, u, attention_cost(layout, u.s, p.threads));
}

nlohmann::json measure_point(const SweepPoint& p) {
  using Clock = std::chrono::steady_clock;
  const Setup u = setup(p);
  const auto t0 = Clock::now();
  const Layout layout = build(u, p.threads);
  const double build_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const AttentionCost cost = attention_cost(layout, u.s, p.threads);
  const PointPrediction pred = predict(p, u, cost);
  // Refuse up front what the prediction says cannot fit, rather than fail half-way.
  check_memory_budget(fmt::format("point {} (inputs, outputs, layout, workspace{}{})", p.key,
                                  u.fidelity ? ", dense output for fidelity" : "",
                                  u.check ? ", reference for the check" : ""),
                      pred.memory_bytes, u.limit, kRaise);

  const Qkv in = make_inputs(p.settings.inputs, u.s, p.settings.seed, u.limit);
  const AttentionShape& s = u.s;
  Tensor out(s.batch, s.q_heads, s.nq, s.dim), lse(s.batch, s.q_heads, s.nq, 1);
  AttentionOptions ao;
  ao.threads = p.threads;
  ao.mask_full_tiles = u.mask_full;
  AttentionStats stats;
  const RepeatTimes t = time_repeats(
      [&] {
        stats =
            attention(in.q.view(), in.k.view(), in.v.view(), layout, out.view(), lse.view(), ao);
      },
      p.settings.warmup, p.settings.repeats);
  check_output_finite(out.view(), lse.view());

  nlohmann::json check = nullptr;
  if (u.check) {
    ReferenceOptions ro;
    ro.max_bytes = u.limit;
    const ReferenceResult ref =
        reference_attention(in.q.view(), in.k.view(), in.v.view(), *u.pattern, u.g, ro);
    const ReferenceError e = compare_to_reference(out.view(), lse.view(), ref);
    check = {{"max_abs_error", e.max_abs},
             {"rel_l2_error", relative_l2_error(out.view(), ref)},
             {"max_lse_error", e.lse_max}};
  }
  nlohmann::json fidelity = nullptr;
  if (u.fidelity) {
    Tensor dense_o(s.batch, s.q_heads, s.nq, s.dim), dense_lse(s.batch, s.q_heads, s.nq, 1);
    const std::string& baseline = p.pattern.fidelity_baseline.empty() ? p.settings.fidelity_baseline
                                                                      : p.pattern.fidelity_baseline;
    baseline_attention(in.q.view(), in.k.view(), in.v.view(), baseline, u.g, p.threads, u.limit,
                       dense_o.view(), dense_lse.view());
    const Fidelity f = compare_to_dense(out.view(), lse.view(), dense_o.view(), dense_lse.view());
    fidelity = {{"rel_l2_error", f.rel_l2_error},
                {"recall_mean", f.recall_mean},
                {"recall_min", f.recall_min},
                {"inputs", p.settings.inputs.kind},
                {"baseline", baseline}};
  }

  const double all_pairs = static_cast<double>(s.batch) * static_cast<double>(s.q_heads) *
                           static_cast<double>(s.nq) * static_cast<double>(s.nk);
  return {
      {"build_seconds", build_seconds},
      {"attention_seconds", {{"median", t.median}, {"min", t.min}, {"max", t.max}, {"all", t.all}}},
      {"allowed_pairs", cost.allowed_pairs},
      {"computed_pairs", cost.computed_pairs},
      {"density", static_cast<double>(cost.allowed_pairs) / all_pairs},
      {"efficiency", cost.efficiency},
      {"useful_gflops", useful_gflops(cost, t.median)},
      {"computed_gflops", computed_gflops(cost, t.median)},
      {"kept_tiles", cost.kept_tiles},
      {"full_tiles", cost.full_tiles},
      {"partial_tiles", cost.partial_tiles},
      {"workspace_bytes", stats.workspace_bytes},
      {"layout_bytes", cost.layout_bytes},
      {"input_bytes", cost.input_bytes},
      {"check", check},
      {"fidelity", fidelity}};
}

}  // namespace spattn::experiments
