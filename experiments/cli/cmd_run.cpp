// spattn run SPEC --n N ...: build a layout, run the flash executor on random or loaded inputs,
// (or the textbook baseline), time it and report the cost model's figures beside the measurement;
// --check compares with the reference executor.
#include <fmt/format.h>
#include <oneapi/tbb/info.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
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
#include "spattn/attention/attention.hpp"
#include "spattn/attention/cost.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/attention/textbook.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/timing.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::cli {
namespace {

struct RunOptions {
  std::string spec;
  std::string from_deepspeed;  // DeepSpeed config file, instead of `spec`
  GeometryOptions geo;
  std::int64_t dim = 64;
  int kv_heads = 0;  // 0: --heads
  std::int64_t batch = 1;
  int repeats = 5;
  std::uint64_t seed = 0;
  std::string executor = "flash";
  bool check = false;
  bool json = false;
  bool mask_full_tiles = false;
  std::string inputs, save;
  std::string memory_budget;
  // Which options the user gave (the rest may come from --inputs files).
  CLI::Option *dim_opt = nullptr, *heads_opt = nullptr, *kv_heads_opt = nullptr,
              *batch_opt = nullptr, *nk_opt = nullptr;
};

// A flag the user gave must equal the file's size; `flag` and `axis` name both in the message.
void match(const CLI::Option* given, std::int64_t flag_value, const std::string& flag,
           std::int64_t file_value, const std::string& file, const std::string& axis) {
  if (given != nullptr && given->count() > 0 && flag_value != file_value)
    throw UsageError(fmt::format("{} has {} {} but {} {} was given: they must agree", file,
                                 file_value, axis, flag, flag_value));
}

using experiments::Qkv;

// Reads --inputs (finite float32 files, k and v of one shape: experiments::read_qkv_npy) and
// takes the sizes not given as flags from them.
Qkv load_inputs(RunOptions& o, std::int64_t max_bytes) {
  experiments::QkvFiles f = experiments::read_qkv_npy(o.inputs, max_bytes);
  const std::string qp = f.q.path, kp = f.k.path;
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
  match(o.batch_opt, o.batch, "--batch", qs[0], qp, "batch entries (axis 0)");
  match(o.heads_opt, o.geo.heads, "--heads", qs[1], qp, "heads (axis 1)");
  match(o.kv_heads_opt, o.kv_heads, "--kv-heads", ks[1], kp, "heads (axis 1)");
  match(o.dim_opt, o.dim, "--d", qs[3], qp, "head dim (axis 3)");
  if (qs[2] != o.geo.n)
    throw UsageError(fmt::format("{} has {} tokens (axis 2) but --n {} was given: they must agree",
                                 qp, qs[2], o.geo.n));
  match(o.nk_opt, o.geo.nk, "--nk", ks[2], kp, "tokens (axis 2)");
  if ((o.nk_opt == nullptr || o.nk_opt->count() == 0) && ks[2] != qs[2])
    o.geo.nk = ks[2];  // keys from the file; queries align bottom-right
  o.batch = qs[0];
  o.geo.heads = static_cast<int>(qs[1]);
  o.kv_heads = static_cast<int>(ks[1]);
  o.dim = qs[3];
  return in;
}

std::int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<std::int64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

void run_run(RunOptions o) {
  using Clock = std::chrono::steady_clock;
  const std::int64_t budget =
      o.memory_budget.empty()
          ? default_memory_budget()
          : parse_byte_count(o.memory_budget,
                             fmt::format("--memory-budget {}", quoted(o.memory_budget, 60, '\'')),
                             std::int64_t{1} << 62);
  if (o.repeats < 1) throw UsageError(fmt::format("--repeats {} must be >= 1", o.repeats));
  if (o.executor != "flash" && o.executor != "textbook")
    throw UsageError(
        fmt::format("--executor '{}' is not allowed: use flash or textbook", o.executor));
  if (o.mask_full_tiles && o.executor != "flash")
    throw UsageError("--mask-full-tiles applies to the flash executor only");

  Qkv in;
  if (!o.inputs.empty()) in = load_inputs(o, budget);
  if (o.kv_heads == 0) o.kv_heads = o.geo.heads;
  if (o.batch < 1) throw UsageError(fmt::format("--batch {} must be >= 1", o.batch));
  if (o.kv_heads < 1 || o.geo.heads % o.kv_heads != 0)
    throw UsageError(fmt::format("--kv-heads {} must divide --heads {} (GQA/MQA groups)",
                                 o.kv_heads, o.geo.heads));
  if (o.dim < 1 || o.dim > kMaxHeadDim)
    throw UsageError(fmt::format("--d {} is not allowed: use 1..{}", o.dim, kMaxHeadDim));
  const Geometry g = o.geo.geometry();

  AttentionShape s;
  s.batch = o.batch;
  s.q_heads = g.heads;
  s.kv_heads = o.kv_heads;
  s.nq = g.nq;
  s.nk = g.nk;
  s.dim = o.dim;
  // Refuse up front what cannot fit: inputs and outputs, and the reference for --check.
  // q, o and lse per query row, k and v per key row, float32; in double: it can exceed int64.
  const double io = 4.0 * (static_cast<double>(s.batch) * static_cast<double>(s.q_heads) *
                               static_cast<double>(s.nq) * static_cast<double>(2 * s.dim + 1) +
                           2.0 * static_cast<double>(s.batch) * static_cast<double>(s.kv_heads) *
                               static_cast<double>(s.nk) * static_cast<double>(s.dim));
  const std::int64_t io_bytes =
      io >= 9.2e18 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(io);
  check_memory_budget("q, k, v, o and lse together", io_bytes, budget, "--memory-budget");
  if (o.check)
    check_memory_budget("--check (the dense reference executor; leave it out to run without)",
                        reference_memory_bytes(s), budget, "--memory-budget");

  const PatternPtr pattern = parse_spec(pattern_spec(o.spec, o.from_deepspeed));
  BuildOptions bo = o.geo.build_options();
  bo.max_layout_bytes = std::min(bo.max_layout_bytes, budget);
  const Layout layout = build_layout(*pattern, g, bo);

  if (o.inputs.empty()) in = experiments::random_inputs(s, o.seed);
  const std::string src = o.inputs.empty() ? fmt::format("random (seed {})", o.seed) : o.inputs;

  Tensor out(s.batch, s.q_heads, s.nq, s.dim), lse(s.batch, s.q_heads, s.nq, 1);
  AttentionOptions ao;
  ao.threads = o.geo.threads;
  ao.mask_full_tiles = o.mask_full_tiles;
  TextbookOptions to;
  to.threads = o.geo.threads;
  to.max_bytes = budget;
  auto run_once = [&] {
    if (o.executor == "flash")
      return attention(in.q.view(), in.k.view(), in.v.view(), layout, out.view(), lse.view(), ao);
    AttentionResult r = textbook_attention(in.q.view(), in.k.view(), in.v.view(), layout, to);
    out = std::move(r.o);
    lse = std::move(r.lse);
    return r.stats;
  };
  AttentionStats stats;
  const experiments::RepeatTimes times =
      experiments::time_repeats([&] { stats = run_once(); }, 1, o.repeats);
  experiments::check_output_finite(out.view(), lse.view());
  const double t_med = times.median, t_min = times.min, t_max = times.max;
  const AttentionCost cost = attention_cost(layout, s, o.geo.threads);
  const std::int64_t peak = peak_rss_bytes();

  std::optional<ReferenceError> err;
  std::optional<double> ref_seconds;
  if (o.check) {
    ReferenceOptions ro;
    ro.max_bytes = budget;
    const auto t0 = Clock::now();
    const ReferenceResult ref =
        reference_attention(in.q.view(), in.k.view(), in.v.view(), *pattern, g, ro);
    ref_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    err = compare_to_reference(out.view(), lse.view(), ref);
  }
  if (!o.save.empty()) {
    std::filesystem::create_directories(o.save);
    const auto dir = std::filesystem::path(o.save);
    write_npy((dir / "o.npy").string(), "<f4", {s.batch, s.q_heads, s.nq, s.dim}, out.values.data(),
              out.values.size() * sizeof(float));
    write_npy((dir / "lse.npy").string(), "<f4", {s.batch, s.q_heads, s.nq}, lse.values.data(),
              lse.values.size() * sizeof(float));
  }

  const int threads_used = o.geo.threads > 0 ? o.geo.threads : tbb::info::default_concurrency();
  const double useful = useful_gflops(cost, t_med), computed = computed_gflops(cost, t_med);
  if (o.json) {
    nlohmann::ordered_json j = {
        {"spec", layout.spec},
        {"executor", o.executor},
        {"mask_full_tiles", o.mask_full_tiles},
        {"nq", s.nq},
        {"nk", s.nk},
        {"heads", s.q_heads},
        {"kv_heads", s.kv_heads},
        {"batch", s.batch},
        {"dim", s.dim},
        {"block_q", g.block_q},
        {"block_k", g.block_k},
        {"threads", o.geo.threads},
        {"threads_used", threads_used},
        {"inputs", o.inputs.empty() ? "random" : o.inputs},
        {"seed", o.seed},
        {"repeats", o.repeats},
        {"build_ms", layout.build_seconds * 1e3},
        {"time_ms", {{"median", t_med * 1e3}, {"min", t_min * 1e3}, {"max", t_max * 1e3}}},
        {"allowed_pairs", cost.allowed_pairs},
        {"computed_pairs", cost.computed_pairs},
        {"kept_tiles", cost.kept_tiles},
        {"full_tiles", cost.full_tiles},
        {"partial_tiles", cost.partial_tiles},
        {"efficiency",  // none when no tile is kept, as in spattn stats
         cost.computed_pairs > 0 ? nlohmann::ordered_json(cost.efficiency) : nullptr},
        {"useful_flops", cost.useful_flops},
        {"computed_flops", cost.computed_flops},
        {"useful_gflops", useful},
        {"computed_gflops", computed},
        {"bytes_read", cost.bytes_read},
        {"bytes_written", cost.bytes_written},
        {"workspace_bytes", stats.workspace_bytes},
        {"workspace_estimate_bytes", cost.flash_workspace_bytes},
        {"layout_bytes", cost.layout_bytes},
        {"input_bytes", cost.input_bytes},
        {"output_bytes", cost.output_bytes},
        {"peak_rss_bytes", peak},
        {"tasks", stats.tasks},
        {"split_rows", stats.split_rows},
        {"check", nullptr},
        {"saved",
         o.save.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(o.save)}};
    if (err)
      j["check"] = {{"max_abs_error", err->max_abs},
                    {"max_rel_error", err->max_rel},
                    {"lse_max_error", err->lse_max},
                    {"finite", err->finite},
                    {"reference_ms", *ref_seconds * 1e3}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::string t;
  auto line = [&t](const char* name, const std::string& value) {
    t += fmt::format("{:<20} {}\n", name, value);
  };
  line("spec", layout.spec);
  line("shape", fmt::format("batch {}, heads {} (K/V heads {}), nq {}, nk {}, d {}", s.batch,
                            s.q_heads, s.kv_heads, s.nq, s.nk, s.dim));
  line("tiles", fmt::format("{} x {}; {} kept ({} full, {} partial)", g.block_q, g.block_k,
                            cost.kept_tiles, cost.full_tiles, cost.partial_tiles));
  line("executor", o.mask_full_tiles ? o.executor + " (every Full tile masked)" : o.executor);
  line("inputs", src);
  line("threads", o.geo.threads == 0 ? fmt::format("{} (all cores)", threads_used)
                                     : fmt::format("{}", o.geo.threads));
  line("mask build", fmt::format("{:.3f} ms", layout.build_seconds * 1e3));
  line("attention", fmt::format("median {:.3f} ms, min {:.3f}, max {:.3f} ({} repeats after 1 "
                                "warm-up)",
                                t_med * 1e3, t_min * 1e3, t_max * 1e3, o.repeats));
  line("allowed pairs", fmt::format("{}", cost.allowed_pairs));
  line("computed pairs", fmt::format("{}  (area of kept tiles)", cost.computed_pairs));
  line("efficiency", cost.computed_pairs > 0
                         ? fmt::format("{:.4f}  (allowed / computed)", cost.efficiency)
                         : std::string("n/a (no tile kept)"));
  line("useful GFLOP/s", fmt::format("{:.3f}  (4 d x allowed pairs / median time)", useful));
  line("computed GFLOP/s", fmt::format("{:.3f}  (4 d x computed pairs / median time)", computed));
  line("workspace", o.executor == "flash"
                        ? fmt::format("{}  (estimate {})", format_bytes(stats.workspace_bytes),
                                      format_bytes(cost.flash_workspace_bytes))
                        : fmt::format("{}  (the materialized nq x nk matrices)",
                                      format_bytes(stats.workspace_bytes)));
  line("peak memory", fmt::format("{}  (max resident set)", format_bytes(peak)));
  if (err) {
    line("check",
         fmt::format("max abs error {:.3e}, max rel error {:.3e}, LSE error {:.3e}{}", err->max_abs,
                     err->max_rel, err->lse_max, err->finite ? "" : ", NON-FINITE OUTPUT"));
    line("reference time", fmt::format("{:.3f} ms", *ref_seconds * 1e3));
  }
  if (!o.save.empty()) line("saved", fmt::format("{}/o.npy, {}/lse.npy", o.save, o.save));
  std::cout << t;
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
  o->nk_opt = sub->get_option("--nk");
  o->dim_opt = sub->add_option("--d", o->dim, "head dim, 1..256")
                   ->capture_default_str()
                   ->transform(decimal(1, 256));
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
  sub->add_flag("--json", o->json, "print JSON instead of a table");
  sub->add_flag("--mask-full-tiles", o->mask_full_tiles,
                "run every kept Full tile through the masked kernel with an all-ones mask (same "
                "output; measures the cost of masking)");
  sub->add_option("--inputs", o->inputs,
                  "read q.npy, k.npy, v.npy (float32 [B, H, N, d], [H, N, d] or [N, d]) from this "
                  "directory")
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
