#include "measure_decode.hpp"

#include <fmt/format.h>
#include <oneapi/tbb/info.h>
#include <sys/resource.h>

#include <algorithm>

#include "spattn/attention/kvcache/policy.hpp"
#include "spattn/experiments/decode_sim.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::experiments {
namespace {

// Prompt queries the policy scores at prefill: h2o every row, snapkv its window.
std::int64_t prompt_query_rows(const CachePolicy& c, std::int64_t n) {
  if (c.kind == CachePolicyKind::H2O) return n;
  if (c.kind == CachePolicyKind::SnapKV) return std::min(n, c.window);
  return 1;
}

// Keys one step reads per K/V head at most.
std::int64_t keys_read(const CachePolicy& c, std::int64_t n, std::int64_t steps) {
  const std::int64_t slots = policy_cache_slots(c, n, steps);
  return c.kind == CachePolicyKind::Quest ? std::min(slots, c.budget) : slots;
}

}  // namespace

void validate_phase(const SweepPoint& p) {
  auto bad = [&](bool c, const std::string& what) {
    if (c) throw UsageError(fmt::format("point {}: {}", p.key, what));
  };
  if (p.phase == "prefill") {
    bad(p.cache != "full",
        fmt::format("cache = '{}' applies to phase = \"decode\" only (prefill has no cache)",
                    p.cache));
    bad(p.decode_steps != 16,
        fmt::format("decode_steps = {} applies to phase = \"decode\" only", p.decode_steps));
    return;
  }
  bad(p.phase != "decode",
      fmt::format("phase '{}' is not allowed: use prefill or decode", p.phase));
  bad(p.pattern.spec != "dense",
      fmt::format("pattern '{}' in phase = \"decode\": the cache policy (the `cache` axis) "
                  "decides what each step reads, so the pattern must be \"dense\"",
                  p.pattern.spec));
  bad(p.executor != Executor::Flash || p.path != ExecutionPath::Auto || p.tile_mode != "auto",
      "executor, path and tile_mode apply to phase = \"prefill\" only: leave them at their "
      "defaults (flash, auto, auto) in phase = \"decode\"");
  bad(p.batch != 1, fmt::format("batch {} in phase = \"decode\": decoding runs batch 1", p.batch));
  bad(p.alibi || p.softcap != 0 || p.scale || !p.sinks_file.empty() || !p.alibi_slopes_file.empty(),
      "score modifications (alibi, softcap, sinks, scale) apply to phase = \"prefill\" only");
  bad(p.settings.inputs.kind != "random",
      fmt::format("inputs '{}' in phase = \"decode\": decoding makes its own tokens from the "
                  "seed (normal K, V and queries, a planted needle); use inputs = \"random\"",
                  p.settings.inputs.name()));
  bad(p.head_dim > 256, fmt::format("head_dim {} in phase = \"decode\": use 1..256", p.head_dim));
  bad(p.nk != 0 && p.nk != p.n,
      fmt::format("nk {} in phase = \"decode\": the cache length is seq_len", p.nk));
  (void)parse_cache_policy(p.cache);
}

Prediction predict_decode(const SweepPoint& p, bool fidelity) {
  const CachePolicy c = parse_cache_policy(p.cache);
  const std::int64_t hq = p.heads, hkv = p.kv_heads == 0 ? p.heads : p.kv_heads;
  const std::int64_t d = p.head_dim, n = p.n, t = p.decode_steps;
  Prediction r;
  r.input_bytes = (2 * hkv * (n + t) * d + hq * (t + prompt_query_rows(c, n)) * d) * 4;
  r.output_bytes = 2 * hq * (d + 1) * 4;
  const KVCacheConfig cfg{hkv, d, policy_cache_slots(c, n, t), c.page, p.kv_dtype};
  std::int64_t caches = kv_cache_bytes(cfg);
  // Keys read per step and head, summed over the steps: 4 d FLOPs per (query head, key).
  double pairs = static_cast<double>(hq) * static_cast<double>(t) *
                 static_cast<double>(std::min(keys_read(c, n, t), n + t));
  if (c.kind == CachePolicyKind::H2O) pairs += 0.5 * static_cast<double>(hq) * n * n;
  if (fidelity) {
    caches += kv_cache_bytes(KVCacheConfig{hkv, d, n + t, 16, KVDtype::F32});
    pairs += static_cast<double>(hq) * static_cast<double>(t) * static_cast<double>(n + t);
  }
  r.workspace_bytes = caches;
  r.useful_flops = r.computed_flops = 4.0 * static_cast<double>(d) * pairs;
  r.bytes_read = static_cast<double>(t) * static_cast<double>(std::min(keys_read(c, n, t), n + t)) *
                 2.0 * static_cast<double>(hkv * kv_row_bytes(p.kv_dtype, d));
  r.memory_bytes = r.input_bytes + r.output_bytes + caches;
  r.seconds = r.computed_flops / (p.settings.predict_gflops * 1e9);
  return r;
}

Measurement measure_decode(const SweepPoint& p, bool fidelity, std::int64_t limit) {
  DecodeSimOptions o;
  o.prompt = p.n;
  o.steps = p.decode_steps;
  o.heads = p.heads;
  o.kv_heads = p.kv_heads == 0 ? p.heads : p.kv_heads;
  o.dim = p.head_dim;
  o.policy = parse_cache_policy(p.cache);
  o.dtype = p.kv_dtype;
  o.threads = p.threads;
  o.seed = p.settings.seed;
  o.fidelity = fidelity;
  o.max_bytes = limit;
  const DecodeSimResult r = run_decode_sim(o);

  Measurement m;
  m.attention = AttentionTimes{0, r.step_seconds};
  DecodeFigures f;
  f.prompt = p.n;
  f.steps = p.decode_steps;
  f.tokens_per_second = r.tokens_per_second;
  f.kv_bytes_per_step = r.kv_bytes_per_step;
  f.kv_read_gbps = r.kv_read_gbps;
  f.cache_bytes = r.cache_bytes;
  f.cache_tokens = r.cache_tokens;
  f.kernel = r.kernel;
  if (r.needle_recall >= 0) f.needle_recall = r.needle_recall;
  if (r.fidelity) {
    f.rel_l2_max = r.rel_l2_max;
    FidelityFigures fid;
    fid.rel_l2_error = r.rel_l2_mean;
    fid.recall_mean = r.mass_recall_mean;
    fid.recall_min = r.mass_recall_min;
    fid.inputs = "decode (synthetic, needle)";
    fid.baseline = "full float32 cache";
    m.fidelity = fid;
  }
  m.decode = f;
  m.resources.workspace_bytes = r.cache_bytes;
  m.resources.threads_used = p.threads > 0 ? p.threads : tbb::info::default_concurrency();
  return m;
}

}  // namespace spattn::experiments
