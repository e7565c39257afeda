#include "spattn/experiments/decode_sim.hpp"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "spattn/attention/attention.hpp"
#include "spattn/attention/random.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::experiments {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Token t of a [1, H, N, d] tensor as a [1, H, 1, d] view.
ConstTensorView token(const Tensor& t, std::int64_t n) {
  ConstTensorView v = t.view();
  v.data = v.row(0, 0, n);
  v.shape[2] = 1;
  return v;
}

// The tokens [a, b) as a view.
ConstTensorView range(const Tensor& t, std::int64_t a, std::int64_t b) {
  ConstTensorView v = t.view();
  v.data = v.row(0, 0, a);
  v.shape[2] = b - a;
  return v;
}

Tensor decode_queries(const DecodeSimOptions& o) {
  Tensor q(1, o.heads, o.steps, o.dim);
  if (o.queries_npy.empty()) {
    fill_normal(q.view(), o.seed, 3);
    return q;
  }
  const NpyArray a = read_npy(o.queries_npy);
  if (a.shape != std::vector<std::int64_t>{o.steps, o.heads, o.dim})
    throw UsageError(
        fmt::format("--queries {}: shape [{}] but decoding needs [steps, heads, d] = "
                    "[{}, {}, {}]",
                    o.queries_npy, fmt::join(a.shape, ", "), o.steps, o.heads, o.dim));
  const std::vector<float> f = a.as_float32();
  for (std::int64_t t = 0; t < o.steps; ++t)
    for (std::int64_t h = 0; h < o.heads; ++h)
      for (std::int64_t x = 0; x < o.dim; ++x)
        q.view().at(0, h, t, x) = f[static_cast<std::size_t>((t * o.heads + h) * o.dim + x)];
  return q;
}

}  // namespace

DecodeSimResult run_decode_sim(const DecodeSimOptions& o) {
  const std::int64_t H = o.kv_heads > 0 ? o.kv_heads : o.heads;
  auto bad = [](bool c, std::string msg) {
    if (c) throw UsageError(msg);
  };
  bad(o.prompt < 1, fmt::format("--prompt {} must be >= 1", o.prompt));
  bad(o.steps < 1, fmt::format("--steps {} must be >= 1", o.steps));
  bad(o.heads < 1 || H < 1 || o.heads % H != 0,
      fmt::format("--heads {} must be a positive multiple of --kv-heads {}", o.heads, H));
  bad(o.dim < 1 || o.dim > 256, fmt::format("--d {} outside 1..256", o.dim));
  const std::int64_t N = o.prompt, T = o.steps, total = N + T;
  const std::int64_t budget = o.max_bytes > 0 ? o.max_bytes : default_memory_budget();
  const std::int64_t input_bytes = 2 * H * total * o.dim * 4 + o.heads * T * o.dim * 4;
  check_memory_budget("the decode inputs (K and V of every token, the decode queries)", input_bytes,
                      budget, "--memory-budget");

  // K, V of every token; streams 1 and 2 of the seed.
  Tensor k(1, H, total, o.dim), v(1, H, total, o.dim);
  fill_normal(k.view(), o.seed, 1);
  fill_normal(v.view(), o.seed, 2);
  Tensor q = decode_queries(o);
  const std::int64_t needle = N / 3;
  if (o.needle) {
    const float u = static_cast<float>(o.needle_scale / std::sqrt(static_cast<double>(o.dim)));
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t x = 0; x < o.dim; ++x)
        k.view().at(0, h, needle, x) = u * std::sqrt(static_cast<float>(o.dim));
    for (std::int64_t h = 0; h < o.heads; ++h)
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t x = 0; x < o.dim; ++x) q.view().at(0, h, t, x) += u;
  }
  // Prompt queries (h2o: every row; snapkv: the window), stream 4.
  Tensor pq;
  if (o.policy.kind == CachePolicyKind::H2O || o.policy.kind == CachePolicyKind::SnapKV) {
    const std::int64_t rows =
        o.policy.kind == CachePolicyKind::H2O ? N : std::min(N, o.policy.window);
    pq = Tensor(1, o.heads, rows, o.dim);
    fill_normal(pq.view(), o.seed, 4);
  } else {
    pq = Tensor(1, o.heads, 1, o.dim);
  }

  DecodeSimResult r;
  if (!o.prefill_spec.empty()) {  // prompt attention, timed once after a warm-up
    const Layout layout = build_layout(*parse_spec(o.prefill_spec),
                                       Geometry{N, N, static_cast<int>(o.heads), 64, 64});
    Tensor pq_all(1, o.heads, N, o.dim);
    check_memory_budget("the prefill queries and output", 2 * o.heads * N * o.dim * 4,
                        budget - input_bytes, "--memory-budget");
    fill_normal(pq_all.view(), o.seed, 5);
    AttentionOptions aopt;
    aopt.threads = o.threads;
    attention(pq_all.view(), range(k, 0, N), range(v, 0, N), layout, aopt);
    const auto t0 = std::chrono::steady_clock::now();
    attention(pq_all.view(), range(k, 0, N), range(v, 0, N), layout, aopt);
    r.prefill_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.prefill_gflops = 4.0 * static_cast<double>(o.dim) *
                       static_cast<double>(layout.counts().allowed_pairs) / r.prefill_seconds / 1e9;
  }
  const KVCacheConfig cfg{H, o.dim, policy_cache_slots(o.policy, N, T), o.policy.page, o.dtype};
  const CachePolicy full_policy;  // "full"
  const KVCacheConfig full_cfg{H, o.dim, total, 16, KVDtype::F32};
  check_memory_budget("the KV caches",
                      kv_cache_bytes(cfg) + (o.fidelity ? kv_cache_bytes(full_cfg) : 0),
                      budget - input_bytes, "--memory-budget");
  PolicyCache pc(o.policy, cfg, o.heads);
  pc.prefill(pq.view(), range(k, 0, N), range(v, 0, N));
  std::unique_ptr<PolicyCache> ref;
  if (o.fidelity) {
    ref = std::make_unique<PolicyCache>(full_policy, full_cfg, o.heads);
    ref->prefill(pq.view(), range(k, 0, N), range(v, 0, N));
  }

  r.fidelity = o.fidelity;
  DecodeOptions dopt;
  dopt.threads = 0;  // the steps run inside one arena of o.threads (below)
  Tensor out(1, o.heads, 1, o.dim), lse(1, o.heads, 1, 1);
  Tensor rout(1, o.heads, 1, o.dim), rlse(1, o.heads, 1, 1);
  double bytes = 0, l2_sum = 0, recall_sum = 0;
  std::int64_t needle_hits = 0;
  r.mass_recall_min = 1;
  auto steps = [&] {
    for (std::int64_t t = 0; t < T; ++t) {
      const auto t0 = std::chrono::steady_clock::now();
      const DecodeStats st =
          pc.step(token(q, t), token(k, N + t), token(v, N + t), out.view(), lse.view(), dopt);
      r.step_seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      bytes += static_cast<double>(st.kv_bytes_read);
      r.kernel = st.kernel;
      if (o.needle)
        for (std::int64_t h = 0; h < o.heads; ++h) {
          const auto read = pc.last_read(h);
          needle_hits += std::binary_search(read.begin(), read.end(), needle) ? 1 : 0;
        }
      if (!ref) continue;
      ref->step(token(q, t), token(k, N + t), token(v, N + t), rout.view(), rlse.view(), dopt);
      double num = 0, den = 0;
      for (std::size_t e = 0; e < out.values.size(); ++e) {
        const double diff = static_cast<double>(out.values[e]) - rout.values[e];
        num += diff * diff;
        den += static_cast<double>(rout.values[e]) * rout.values[e];
      }
      const double l2 = std::sqrt(num / std::max(den, 1e-300));
      l2_sum += l2;
      r.rel_l2_max = std::max(r.rel_l2_max, l2);
      for (std::int64_t h = 0; h < o.heads; ++h) {
        const double m =
            std::min(1.0, std::exp(static_cast<double>(lse.values[h]) - rlse.values[h]));
        recall_sum += m;
        r.mass_recall_min = std::min(r.mass_recall_min, m);
      }
    }
  };
  if (o.threads > 0) {
    tbb::task_arena arena(o.threads);  // one arena for all steps, not one per call
    arena.execute(steps);
  } else {
    steps();
  }
  const double total_s = [&] {
    double s = 0;
    for (double x : r.step_seconds) s += x;
    return s;
  }();
  r.tokens_per_second = static_cast<double>(T) / total_s;
  r.median_step_seconds = median(r.step_seconds);
  const std::size_t tenth = std::max<std::size_t>(1, r.step_seconds.size() / 10);
  r.first_median_seconds =
      median({r.step_seconds.begin(), r.step_seconds.begin() + static_cast<std::ptrdiff_t>(tenth)});
  r.last_median_seconds =
      median({r.step_seconds.end() - static_cast<std::ptrdiff_t>(tenth), r.step_seconds.end()});
  r.kv_bytes_per_step = bytes / static_cast<double>(T);
  r.kv_read_gbps = r.kv_bytes_per_step / r.median_step_seconds / 1e9;
  r.cache_bytes = pc.cache().memory_bytes();
  r.cache_tokens = pc.cache().size();
  if (o.needle)
    r.needle_recall = static_cast<double>(needle_hits) / static_cast<double>(T * o.heads);
  if (ref) {
    r.rel_l2_mean = l2_sum / static_cast<double>(T);
    r.mass_recall_mean = recall_sum / static_cast<double>(T * o.heads);
  } else {
    r.mass_recall_min = 0;
  }
  return r;
}

double stream_triad_gbps(int threads, std::int64_t elements, int repeats) {
  std::vector<double> a(static_cast<std::size_t>(elements), 0.0), b(a.size(), 1.0),
      c(a.size(), 2.0);
  double best = 0;
  auto body = [&] {
    const std::int64_t chunks = 256, per = (elements + chunks - 1) / chunks;
    for (int r = 0; r < repeats + 1; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      tbb::parallel_for(std::int64_t{0}, chunks, [&](std::int64_t ch) {
        const std::int64_t e = std::min(elements, (ch + 1) * per);
        for (std::int64_t i = ch * per; i < e; ++i) a[i] = b[i] + 3.0 * c[i];
      });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) best = std::max(best, 24.0 * static_cast<double>(elements) / s / 1e9);
    }
  };
  if (threads > 0) {
    tbb::task_arena arena(threads);
    arena.execute(body);
  } else {
    body();
  }
  return best;
}

}  // namespace spattn::experiments
