#pragma once
// Generation under a KV cache policy (spattn decode): a prompt of N tokens enters the cache, then
// T decode steps each add one token and attend one query per head to what the policy reads.
// Reports speed (tokens per second, step times, K/V bytes read per step, cache memory) and, with
// fidelity on, each step against a full float32 cache run beside it: relative L2 of the output,
// attention-mass recall and planted-needle retrieval. Also a STREAM triad to compare the K/V read
// rate with.
#include <cstdint>
#include <string>
#include <vector>

#include "spattn/attention/kv_tensor.hpp"
#include "spattn/attention/kvcache/policy.hpp"

namespace spattn::experiments {

struct DecodeSimOptions {
  std::int64_t prompt = 4096;  // N
  std::int64_t steps = 64;     // T
  std::int64_t heads = 8;      // query heads
  std::int64_t kv_heads = 0;   // 0: heads
  std::int64_t dim = 64;
  CachePolicy policy;
  KVDtype dtype = KVDtype::F32;
  int threads = 0;
  std::uint64_t seed = 1;
  bool fidelity = true;  // run the full float32 cache beside it
  // Plant a needle: the key at position prompt / 3 (every K/V head) is needle_scale sqrt(d) times a
  // unit vector u and every decode query gets + needle_scale u: a logit of about needle_scale^2.
  bool needle = true;
  double needle_scale = 3.5;
  std::string queries_npy;  // decode queries [T, Hq, d] float32 instead of synthetic ones
  // Prefill: when set, the prompt's attention under this pattern spec (float32 K/V, the flash
  // executor, synthetic prompt queries) is run and timed before the cache is filled.
  std::string prefill_spec;
  std::int64_t max_bytes = 0;  // memory budget for the caches (0: default_memory_budget())
};

struct DecodeSimResult {
  std::vector<double> step_seconds;  // each step (cache insert + selection + attention)
  double tokens_per_second = 0;      // steps / sum of step times
  double median_step_seconds = 0;
  double first_median_seconds = 0;  // median over the first tenth of the steps (>= 1)
  double last_median_seconds = 0;   // median over the last tenth
  double kv_bytes_per_step = 0;     // mean K/V (and page metadata) bytes read per step
  double kv_read_gbps = 0;          // kv_bytes_per_step / median step time, in 1e9 B/s
  std::int64_t cache_bytes = 0;     // memory of the policy's cache
  std::int64_t cache_tokens = 0;    // tokens it holds at the end
  std::string kernel;
  double prefill_seconds = 0;  // prefill attention (0: not run)
  double prefill_gflops = 0;   // 4 d allowed pairs per head / prefill time, in 1e9/s
  bool fidelity = false;
  double rel_l2_mean = 0, rel_l2_max = 0;  // ||o - o_full|| / ||o_full|| per step
  // Per step and head exp(lse - lse_full): the share of full attention's mass on the keys read
  // (exact for f32 storage; with bf16 / int8 it includes their rounding).
  double mass_recall_mean = 0, mass_recall_min = 0;
  double needle_recall = -1;  // share of (step, head) whose read set held the needle (-1: none)
};

// Throws UsageError on bad sizes or files and BudgetError when the caches exceed the budget.
DecodeSimResult run_decode_sim(const DecodeSimOptions& o);

// STREAM triad a[i] = b[i] + s * c[i] over three arrays of `elements` doubles on `threads`
// threads (0: all), best of `repeats`: bytes moved (24 per element) per second, in 1e9 B/s.
double stream_triad_gbps(int threads, std::int64_t elements, int repeats);

}  // namespace spattn::experiments
