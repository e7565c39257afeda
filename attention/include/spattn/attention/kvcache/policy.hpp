#pragma once
// Cache policies for decoding: which tokens a KV cache keeps and which of them a step reads.
//
//   full                          keep every token; read all (refused when the cache is full)
//   streaming(sink, recent)       StreamingLLM: keep positions [0, sink) and the last `recent`
//                                 (a ring buffer of sink + recent slots that never grows)
//   quest(page, budget)           Quest: keep every token; each step reads, per query head, the
//                                 page holding the newest token plus the budget / page - 1 other
//                                 pages with the largest bound U = sum_x max(q_x min_x, q_x max_x)
//                                 over the page's stored keys (ties: lower page first)
//   h2o(heavy, recent)            H2O: acc_j = sum of the attention probability of token j over
//                                 every query so far (prompt rows included; per K/V head, summed
//                                 over its query heads); when more than heavy + recent are held,
//                                 keep the last `recent` and the `heavy` older ones of largest acc
//                                 (ties: lower position first); evicted tokens never return
//   snapkv(window, capacity, pool) SnapKV, once after the prompt (when N >= capacity): votes
//                                 v_j = sum over the last `window` prompt queries of their
//                                 softmax (causal) probability of key j < N - window, per K/V head
//                                 summed over its query heads, max-pooled with an odd kernel
//                                 `pool` (stride 1, padding pool / 2); keep the capacity - window
//                                 keys of largest pooled vote (ties: lower position) and the
//                                 window; decoding then appends without eviction
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spattn/attention/decode.hpp"
#include "spattn/attention/kvcache/kv_cache.hpp"

namespace spattn {

enum class CachePolicyKind { Full, Streaming, Quest, H2O, SnapKV };

struct CachePolicy {
  CachePolicyKind kind = CachePolicyKind::Full;
  std::int64_t sink = 4, recent = 1024;       // streaming; h2o uses recent
  std::int64_t page = 16, budget = 1024;      // quest
  std::int64_t heavy = 128;                   // h2o
  std::int64_t window = 32, capacity = 2048;  // snapkv
  std::int64_t pool = 7;                      // snapkv (odd)
  std::string spec() const;                   // canonical text, parses back
};

// Parses "full", "streaming(4, 1024)", "quest(16, 1024)", "h2o(128, 128)", "snapkv(32, 2048, 7)".
// Throws UsageError naming the bad text or value and what is allowed.
CachePolicy parse_cache_policy(std::string_view text);

// Slots a cache needs under `p` for a prompt of `prompt` tokens followed by `steps` decode steps.
std::int64_t policy_cache_slots(const CachePolicy& p, std::int64_t prompt, std::int64_t steps);

// A KV cache run under a policy. q_heads is a multiple of the cache's K/V heads.
class PolicyCache {
 public:
  PolicyCache(const CachePolicy& policy, const KVCacheConfig& config, std::int64_t q_heads);

  // The prompt: k, v [1, H, N, d] and the last M of its queries q [1, Hq, M, d] (read by h2o,
  // which needs M = N and refuses N > 65536 since it scores every prompt row, and by snapkv,
  // which needs M >= its window; the others ignore q).
  void prefill(const ConstTensorView& q, const ConstTensorView& k, const ConstTensorView& v);
  // One decode step: the new token's k, v [1, H, 1, d] enter the cache (under the policy), then
  // q [1, Hq, 1, d] attends to what the policy reads; o [1, Hq, 1, d], lse [1, Hq, 1, 1].
  DecodeStats step(const ConstTensorView& q, const ConstTensorView& k, const ConstTensorView& v,
                   const TensorView& o, const TensorView& lse, const DecodeOptions& options = {});

  const KVCache& cache() const { return cache_; }
  const CachePolicy& policy() const { return policy_; }
  std::int64_t seen() const { return seen_; }  // tokens that have entered (prompt + steps)
  // Sorted positions held by K/V head h.
  std::vector<std::int64_t> kept(std::int64_t h) const;
  // Quest: sorted positions the last step read for query head h (others: kept(h / group)).
  std::vector<std::int64_t> last_read(std::int64_t qh) const;
  // h2o: accumulated attention of the token at `position` on K/V head h (0 when not held).
  double accumulated(std::int64_t h, std::int64_t position) const;

 private:
  void add_token(const ConstTensorView& k, const ConstTensorView& v, std::int64_t t);
  void h2o_accumulate(const ConstTensorView& q, const TensorView& lse);
  void h2o_evict();
  Layout quest_layout(const ConstTensorView& q);

  CachePolicy policy_;
  KVCache cache_;
  std::int64_t q_heads_ = 1, seen_ = 0;
  std::vector<double> acc_;  // h2o: [H, capacity] by slot
  std::vector<std::vector<std::int64_t>> last_read_;
};

}  // namespace spattn
