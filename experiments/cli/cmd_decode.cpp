// spattn decode: generation under a KV cache policy (experiments/decode_sim.hpp): a prompt of
// --prompt tokens, then --steps decode steps; tokens per second, K/V bytes read per step, cache
// memory and fidelity against a full float32 cache. --stream also measures a STREAM triad in
// the same process, for the K/V read rate to be compared with.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_common.hpp"
#include "spattn/experiments/decode_sim.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"

namespace spattn::cli {
namespace {

struct DecodeCliOptions {
  experiments::DecodeSimOptions sim;
  std::string policy = "full";
  std::string dtype = "f32";
  std::string memory_budget;
  bool no_fidelity = false;
  bool no_needle = false;
  bool stream = false;
  bool json = false;
};

void run_decode(DecodeCliOptions o) {
  o.sim.policy = parse_cache_policy(o.policy);
  o.sim.dtype = parse_kv_dtype(o.dtype, "--kv-dtype");
  o.sim.fidelity = !o.no_fidelity;
  o.sim.needle = !o.no_needle;
  if (!o.memory_budget.empty())
    o.sim.max_bytes = parse_byte_count(
        o.memory_budget, fmt::format("--memory-budget {}", quoted(o.memory_budget, 60, '\'')),
        std::int64_t{1} << 62);
  const experiments::DecodeSimResult r = experiments::run_decode_sim(o.sim);
  const double triad =
      o.stream ? experiments::stream_triad_gbps(o.sim.threads, std::int64_t{1} << 25, 5) : 0;
  const std::int64_t kv_heads = o.sim.kv_heads > 0 ? o.sim.kv_heads : o.sim.heads;
  if (o.json) {
    nlohmann::json j = {{"policy", o.sim.policy.spec()},
                        {"kv_dtype", kv_dtype_name(o.sim.dtype)},
                        {"prompt", o.sim.prompt},
                        {"steps", o.sim.steps},
                        {"heads", o.sim.heads},
                        {"kv_heads", kv_heads},
                        {"head_dim", o.sim.dim},
                        {"threads", o.sim.threads},
                        {"kernel", r.kernel},
                        {"tokens_per_second", r.tokens_per_second},
                        {"median_step_seconds", r.median_step_seconds},
                        {"first_median_seconds", r.first_median_seconds},
                        {"last_median_seconds", r.last_median_seconds},
                        {"kv_bytes_per_step", r.kv_bytes_per_step},
                        {"kv_read_gbps", r.kv_read_gbps},
                        {"cache_bytes", r.cache_bytes},
                        {"cache_tokens", r.cache_tokens}};
    if (r.fidelity) {
      j["rel_l2_mean"] = r.rel_l2_mean;
      j["rel_l2_max"] = r.rel_l2_max;
      j["mass_recall_mean"] = r.mass_recall_mean;
      j["mass_recall_min"] = r.mass_recall_min;
    }
    if (r.needle_recall >= 0) j["needle_recall"] = r.needle_recall;
    if (o.stream) j["stream_triad_gbps"] = triad;
    if (!o.sim.prefill_spec.empty()) {
      j["prefill"] = o.sim.prefill_spec;
      j["prefill_seconds"] = r.prefill_seconds;
      j["prefill_gflops"] = r.prefill_gflops;
    }
    std::cout << j.dump() << "\n";
    return;
  }
  auto line = [](const std::string& k, const std::string& v) {
    std::cout << fmt::format("{:<24}{}\n", k, v);
  };
  line("policy",
       fmt::format("{}, K/V {} ({})", o.sim.policy.spec(), kv_dtype_name(o.sim.dtype), r.kernel));
  line("shape", fmt::format("prompt {} + {} steps, {} heads ({} K/V), d = {}", o.sim.prompt,
                            o.sim.steps, o.sim.heads, kv_heads, o.sim.dim));
  line("tokens/s", fmt::format("{:.1f} (median step {:.3f} ms; first tenth {:.3f} ms, last "
                               "tenth {:.3f} ms)",
                               r.tokens_per_second, r.median_step_seconds * 1e3,
                               r.first_median_seconds * 1e3, r.last_median_seconds * 1e3));
  line("K/V read per step",
       fmt::format("{} ({:.2f} GB/s at the median step)",
                   format_bytes(static_cast<std::int64_t>(r.kv_bytes_per_step)), r.kv_read_gbps));
  if (!o.sim.prefill_spec.empty())
    line("prefill", fmt::format("{}: {:.3f} s, {:.1f} useful GFLOP/s (float32 K/V)",
                                o.sim.prefill_spec, r.prefill_seconds, r.prefill_gflops));
  if (o.stream)
    line("STREAM triad", fmt::format("{:.2f} GB/s (ratio {:.2f})", triad, r.kv_read_gbps / triad));
  line("cache",
       fmt::format("{} tokens held, {} allocated", r.cache_tokens, format_bytes(r.cache_bytes)));
  if (r.fidelity) {
    line("rel. L2 vs full f32",
         fmt::format("mean {:.3g}, max {:.3g}", r.rel_l2_mean, r.rel_l2_max));
    line("attention-mass recall",
         fmt::format("mean {:.4f}, min {:.4f}", r.mass_recall_mean, r.mass_recall_min));
  }
  if (r.needle_recall >= 0)
    line("needle read", fmt::format("{:.3f} of steps x heads", r.needle_recall));
}

}  // namespace

Command add_decode_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "decode",
      "Simulate generation under a KV cache policy: tokens/s, K/V bytes per step, cache memory, "
      "fidelity against a full cache");
  auto o = std::make_shared<DecodeCliOptions>();
  sub->add_option("--prompt", o->sim.prompt, "prompt tokens entering the cache first")
      ->capture_default_str()
      ->transform(decimal(1, std::int64_t{1} << 32));
  sub->add_option("--steps", o->sim.steps, "decode steps (one new token and query each)")
      ->capture_default_str()
      ->transform(decimal(1, std::int64_t{1} << 32));
  sub->add_option("--policy", o->policy,
                  "cache policy: full, streaming(sink, recent), quest(page, budget), "
                  "h2o(heavy, recent), snapkv(window, capacity, pool)")
      ->capture_default_str();
  sub->add_option("--kv-dtype", o->dtype, "K/V storage: f32, bf16, int8 (per-token scales)")
      ->capture_default_str();
  sub->add_option("--heads", o->sim.heads, "query heads")
      ->capture_default_str()
      ->transform(decimal(1, 4096));
  sub->add_option("--kv-heads", o->sim.kv_heads, "K/V heads (0: --heads)")
      ->capture_default_str()
      ->transform(decimal(0, 4096));
  sub->add_option("--d,--head-dim", o->sim.dim, "head dim, 1..256")
      ->capture_default_str()
      ->transform(decimal(1, 256));
  sub->add_option("--threads", o->sim.threads, "worker threads (0: all cores)")
      ->capture_default_str()
      ->transform(decimal(0, kMaxThreads));
  sub->add_option("--seed", o->sim.seed, "seed of the synthetic tokens")->capture_default_str();
  sub->add_option("--prefill", o->sim.prefill_spec,
                  "pattern spec of the prompt's attention, run and timed once (e.g. causal); "
                  "default: the prompt only fills the cache")
      ->check(non_empty());
  sub->add_option("--queries", o->sim.queries_npy, "decode queries [steps, heads, d] float32 .npy")
      ->check(non_empty());
  sub->add_option("--memory-budget", o->memory_budget,
                  "refuse caches and inputs beyond this (e.g. 8GiB)")
      ->check(non_empty());
  sub->add_flag("--no-fidelity", o->no_fidelity, "skip the full float32 cache run beside it");
  sub->add_flag("--no-needle", o->no_needle, "do not plant the needle key");
  sub->add_flag("--stream", o->stream, "also measure a STREAM triad (3 x 256 MiB) in this process");
  sub->add_flag("--json", o->json, "print one JSON line");
  return {sub, [o] { run_decode(*o); }};
}

}  // namespace spattn::cli
