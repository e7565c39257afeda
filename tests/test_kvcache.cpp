// The KV cache and its policies against brute-force rules: page min/max, the streaming ring's kept
// set and constant memory, Quest's page choice, H2O's greedy eviction and SnapKV's pooled vote,
// each recomputed independently in double; every step's output against the double reference over
// the keys read; errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "attention_testing.hpp"
#include "spattn/attention/kvcache/policy.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/patterns/error.hpp"

using namespace spattn;

namespace {

// Token n of a [1, H, N, d] tensor as a [1, H, 1, d] view.
ConstTensorView token(const Tensor& t, std::int64_t n) {
  ConstTensorView v = t.view();
  v.data = v.row(0, 0, n);
  v.shape[2] = 1;
  return v;
}

// Prefix [0, n) as a [1, H, n, d] view.
ConstTensorView prefix(const Tensor& t, std::int64_t n) {
  ConstTensorView v = t.view();
  v.shape[2] = n;
  return v;
}

struct Stream {
  Tensor q, k, v;
};
Stream stream(std::int64_t hq, std::int64_t h, std::int64_t n, std::int64_t d, std::uint64_t seed) {
  return {test::random_tensor(1, hq, n, d, seed, 0), test::random_tensor(1, h, n, d, seed, 1),
          test::random_tensor(1, h, n, d, seed, 2)};
}

double dotd(const float* a, const float* b, std::int64_t d) {
  double s = 0;
  for (std::int64_t x = 0; x < d; ++x) s += static_cast<double>(a[x]) * b[x];
  return s;
}

// Softmax probabilities of query row q over keys `keys` (positions into k of head h), double.
std::vector<double> probs(const float* q, const Tensor& k, std::int64_t h,
                          const std::vector<std::int64_t>& keys) {
  const std::int64_t d = k.shape[3];
  std::vector<double> s;
  double mx = -std::numeric_limits<double>::infinity();
  for (auto j : keys) {
    s.push_back(dotd(q, k.view().row(0, h, j), d) / std::sqrt(static_cast<double>(d)));
    mx = std::max(mx, s.back());
  }
  double l = 0;
  for (double& x : s) l += (x = std::exp(x - mx));
  for (double& x : s) x /= l;
  return s;
}

// The step output against the reference over the cache's stored keys that `read` names.
void check_step_output(const PolicyCache& pc, const Tensor& o, const Tensor& lse,
                       const ConstTensorView& q, std::int64_t group) {
  const Tensor kd = dequantize_kv(pc.cache().keys()), vd = dequantize_kv(pc.cache().values());
  const ReferenceResult ref =
      reference_attention(q, kd.view(), vd.view(), [&](int head, std::int64_t, std::int64_t j) {
        const auto read = pc.last_read(head);
        return std::binary_search(read.begin(), read.end(), pc.cache().position(head / group, j));
      });
  const ReferenceError err = compare_to_reference(o.view(), lse.view(), ref);
  CHECK(err.finite);
  CHECK(err.max_rel < 1e-5);
  CHECK(err.lse_max < 1e-5);
}

}  // namespace

TEST_CASE("KV cache: page min/max equal the stored keys' extremes", "[kvcache]") {
  for (KVDtype t : {KVDtype::F32, KVDtype::BF16, KVDtype::Int8}) {
    const Stream s = stream(2, 2, 70, 8, 5);
    KVCache c({2, 8, 80, 16, t});
    c.append(s.k.view(), s.v.view(), 0, 37, 0);
    c.append(s.k.view(), s.v.view(), 37, 33, 37);
    c.overwrite(20, s.k.view(), s.v.view(), 3, 3);
    c.remove({5, 66});
    const KVView kv = c.keys();
    REQUIRE(c.size() == 69);
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t p = 0; p < c.pages(); ++p)
        for (std::int64_t x = 0; x < 8; ++x) {
          float lo = INFINITY, hi = -INFINITY;
          for (std::int64_t j = p * 16; j < std::min<std::int64_t>(69, (p + 1) * 16); ++j) {
            lo = std::min(lo, kv.value(0, h, j, x));
            hi = std::max(hi, kv.value(0, h, j, x));
          }
          CHECK(c.page_min(h, p)[x] == lo);
          CHECK(c.page_max(h, p)[x] == hi);
        }
    CHECK(c.position(0, 5) == 69);  // the last slot moved into the removed one
    CHECK(c.position(1, 5) == 5);
  }
}

TEST_CASE("KV cache: a full cache refuses more tokens, memory is fixed", "[kvcache]") {
  const Stream s = stream(1, 1, 20, 4, 1);
  KVCache c({1, 4, 10, 16, KVDtype::BF16});
  const std::int64_t bytes = c.memory_bytes();
  c.append(s.k.view(), s.v.view(), 0, 8, 0);
  CHECK_THROWS_WITH(c.append(s.k.view(), s.v.view(), 8, 3, 8),
                    Catch::Contains("KV cache full") && Catch::Contains("capacity of 10"));
  CHECK(c.size() == 8);
  CHECK(c.memory_bytes() == bytes);
  CHECK_THROWS_WITH(KVCache({1, 4, 0, 16, KVDtype::F32}), Catch::Contains("capacity = 0"));
  CHECK_THROWS_AS(KVCache({1, 64, std::int64_t{1} << 30, 16, KVDtype::F32}, 1 << 20), BudgetError);
}

TEST_CASE("streaming cache keeps the sinks and the last `recent` in constant memory", "[kvcache]") {
  const std::int64_t N = 50, T = 120, H = 2, d = 16;
  const Stream s = stream(4, H, N + T, d, 9);
  const CachePolicy pol = parse_cache_policy("streaming(4, 32)");
  PolicyCache pc(pol, {H, d, policy_cache_slots(pol, N, T), 16, KVDtype::F32}, 4);
  CHECK(pc.cache().capacity() == 36);
  pc.prefill(prefix(s.q, N), prefix(s.k, N), prefix(s.v, N));
  const std::int64_t bytes = pc.cache().memory_bytes();
  Tensor o(1, 4, 1, d), lse(1, 4, 1, 1);
  for (std::int64_t t = N; t < N + T; ++t) {
    pc.step(token(s.q, t), token(s.k, t), token(s.v, t), o.view(), lse.view());
    std::vector<std::int64_t> want;
    for (std::int64_t p = 0; p <= t; ++p)
      if (p < 4 || p > t - 32) want.push_back(p);
    for (std::int64_t h = 0; h < H; ++h) CHECK(pc.kept(h) == want);
    CHECK(pc.cache().memory_bytes() == bytes);
    if (t % 40 == 0) check_step_output(pc, o, lse, token(s.q, t), 2);
  }
  // The keys held are the tokens at those positions.
  for (std::int64_t j = 0; j < pc.cache().size(); ++j)
    CHECK(pc.cache().keys().value(0, 1, j, 3) == s.k.view().at(0, 1, pc.cache().position(1, j), 3));
}

TEST_CASE("quest reads the newest page and the pages of largest bound", "[kvcache]") {
  for (KVDtype t : {KVDtype::F32, KVDtype::Int8}) {
    const std::int64_t N = 200, T = 30, H = 2, d = 16, P = 16;
    const Stream s = stream(4, H, N + T, d, 4);
    const CachePolicy pol = parse_cache_policy("quest(16, 64)");
    PolicyCache pc(pol, {H, d, policy_cache_slots(pol, N, T), 16, t}, 4);
    pc.prefill(prefix(s.q, N), prefix(s.k, N), prefix(s.v, N));
    Tensor o(1, 4, 1, d), lse(1, 4, 1, 1);
    for (std::int64_t step = N; step < N + T; ++step) {
      pc.step(token(s.q, step), token(s.k, step), token(s.v, step), o.view(), lse.view());
      const KVView kv = pc.cache().keys();
      const std::int64_t n = step + 1, np = (n + P - 1) / P;
      for (std::int64_t qh = 0; qh < 4; ++qh) {
        const float* q = token(s.q, step).row(0, qh, 0);
        std::vector<std::pair<double, std::int64_t>> u;  // (-bound, page): sorts best first
        for (std::int64_t p = 0; p + 1 < np; ++p) {
          double b = 0;
          for (std::int64_t x = 0; x < d; ++x) {
            double lo = INFINITY, hi = -INFINITY;
            for (std::int64_t j = p * P; j < (p + 1) * P; ++j) {
              lo = std::min<double>(lo, kv.value(0, qh / 2, j, x));
              hi = std::max<double>(hi, kv.value(0, qh / 2, j, x));
            }
            b += std::max(q[x] * lo, q[x] * hi);
          }
          u.push_back({-b, p});
        }
        std::sort(u.begin(), u.end());
        std::vector<std::int64_t> want;
        for (std::int64_t r = 0; r < 3; ++r)
          for (std::int64_t j = u[r].second * P; j < (u[r].second + 1) * P; ++j) want.push_back(j);
        for (std::int64_t j = (np - 1) * P; j < n; ++j) want.push_back(j);
        std::sort(want.begin(), want.end());
        CHECK(pc.last_read(qh) == want);
      }
      if (step % 10 == 0) check_step_output(pc, o, lse, token(s.q, step), 2);
    }
  }
}

TEST_CASE("h2o keeps the recent window and the heavy hitters, greedily", "[kvcache]") {
  const std::int64_t N = 40, T = 60, H = 2, d = 16, heavy = 6, recent = 8;
  const Stream s = stream(4, H, N + T, d, 11);
  const CachePolicy pol = parse_cache_policy("h2o(6, 8)");
  PolicyCache pc(pol, {H, d, policy_cache_slots(pol, N, T), 16, KVDtype::F32}, 4);
  pc.prefill(prefix(s.q, N), prefix(s.k, N), prefix(s.v, N));
  // Brute force per K/V head: acc by position, kept set.
  std::vector<std::map<std::int64_t, double>> acc(H);
  auto evict = [&](std::int64_t h, std::int64_t seen) {
    std::vector<std::pair<double, std::int64_t>> older;  // (-acc, position)
    for (auto [p, a] : acc[h])
      if (p < seen - recent) older.push_back({-a, p});
    std::sort(older.begin(), older.end());
    for (std::size_t r = heavy; r < older.size(); ++r) acc[h].erase(older[r].second);
  };
  for (std::int64_t h = 0; h < H; ++h) {
    for (std::int64_t j = 0; j < N; ++j) acc[h][j] = 0;
    for (std::int64_t qh = 2 * h; qh < 2 * h + 2; ++qh)
      for (std::int64_t i = 0; i < N; ++i) {
        std::vector<std::int64_t> keys(static_cast<std::size_t>(i + 1));
        std::iota(keys.begin(), keys.end(), 0);
        const auto p = probs(s.q.view().row(0, qh, i), s.k, h, keys);
        for (std::int64_t j = 0; j <= i; ++j) acc[h][j] += p[j];
      }
    evict(h, N);
  }
  Tensor o(1, 4, 1, d), lse(1, 4, 1, 1);
  for (std::int64_t t = N; t < N + T; ++t) {
    pc.step(token(s.q, t), token(s.k, t), token(s.v, t), o.view(), lse.view());
    for (std::int64_t h = 0; h < H; ++h) {
      acc[h][t] = 0;
      std::vector<std::int64_t> keys;
      for (auto [p, a] : acc[h]) keys.push_back(p);
      for (std::int64_t qh = 2 * h; qh < 2 * h + 2; ++qh) {
        const auto p = probs(token(s.q, t).row(0, qh, 0), s.k, h, keys);
        for (std::size_t r = 0; r < keys.size(); ++r) acc[h][keys[r]] += p[r];
        // The step read exactly the kept tokens and the new one (before evicting).
        for (std::int64_t x = 0; x < d; ++x) {
          double want = 0;
          for (std::size_t r = 0; r < keys.size(); ++r)
            want += p[r] * s.v.view().at(0, h, keys[r], x);
          CHECK(std::abs(o.view().at(0, qh, 0, x) - want) < 1e-5);
        }
      }
      evict(h, t + 1);
      std::vector<std::int64_t> want;
      for (auto [p, a] : acc[h]) want.push_back(p);
      CHECK(pc.kept(h) == want);
      CHECK(static_cast<std::int64_t>(want.size()) == heavy + recent);
    }
  }
}

TEST_CASE("snapkv keeps the window and the top pooled votes", "[kvcache]") {
  const std::int64_t N = 120, H = 2, d = 16, w = 8, C = 40, pool = 5;
  const Stream s = stream(2, H, N + 5, d, 13);
  const CachePolicy pol = parse_cache_policy("snapkv(8, 40, 5)");
  PolicyCache pc(pol, {H, d, policy_cache_slots(pol, N, 5), 16, KVDtype::F32}, 2);
  pc.prefill(prefix(s.q, N), prefix(s.k, N), prefix(s.v, N));
  for (std::int64_t h = 0; h < H; ++h) {
    std::vector<double> vote(static_cast<std::size_t>(N - w), 0.0);
    for (std::int64_t i = N - w; i < N; ++i) {
      std::vector<std::int64_t> keys(static_cast<std::size_t>(i + 1));
      std::iota(keys.begin(), keys.end(), 0);
      const auto p = probs(s.q.view().row(0, h, i), s.k, h, keys);
      for (std::int64_t j = 0; j < N - w; ++j) vote[j] += p[j];
    }
    std::vector<std::pair<double, std::int64_t>> pooled;
    for (std::int64_t j = 0; j < N - w; ++j) {
      double m = -INFINITY;
      for (std::int64_t t = j - pool / 2; t <= j + pool / 2; ++t)
        if (t >= 0 && t < N - w) m = std::max(m, vote[t]);
      pooled.push_back({-m, j});
    }
    std::sort(pooled.begin(), pooled.end());
    std::vector<std::int64_t> want;
    for (std::int64_t r = 0; r < C - w; ++r) want.push_back(pooled[r].second);
    for (std::int64_t j = N - w; j < N; ++j) want.push_back(j);
    std::sort(want.begin(), want.end());
    CHECK(pc.kept(h) == want);
  }
  Tensor o(1, 2, 1, d), lse(1, 2, 1, 1);
  for (std::int64_t t = N; t < N + 5; ++t)
    pc.step(token(s.q, t), token(s.k, t), token(s.v, t), o.view(), lse.view());
  CHECK(pc.cache().size() == C + 5);
  check_step_output(pc, o, lse, token(s.q, N + 4), 1);
  // A full-cache run refuses the token past its capacity.
  const CachePolicy full = parse_cache_policy("full");
  PolicyCache fc(full, {H, d, N, 16, KVDtype::F32}, 2);
  fc.prefill(prefix(s.q, N), prefix(s.k, N), prefix(s.v, N));
  CHECK_THROWS_WITH(fc.step(token(s.q, N), token(s.k, N), token(s.v, N), o.view(), lse.view()),
                    Catch::Contains("KV cache full"));
}

TEST_CASE("cache policies: parsing and clear errors", "[kvcache]") {
  for (const char* ok :
       {"full", "streaming(4, 1024)", "quest(16, 1024)", "h2o(128, 128)", "snapkv(32, 2048, 7)"})
    CHECK(parse_cache_policy(ok).spec() == ok);
  CHECK_THROWS_WITH(parse_cache_policy("quest(16, 8)"), Catch::Contains("budget = 8"));
  CHECK_THROWS_WITH(parse_cache_policy("quest(0, 64)"), Catch::Contains("page = 0"));
  CHECK_THROWS_WITH(parse_cache_policy("snapkv(32, 16, 7)"), Catch::Contains("capacity = 16"));
  CHECK_THROWS_WITH(parse_cache_policy("snapkv(4, 64, 6)"), Catch::Contains("must be odd"));
  CHECK_THROWS_WITH(parse_cache_policy("lru(3)"), Catch::Contains("unknown cache policy"));
  CHECK_THROWS_WITH(parse_cache_policy("streaming(4)"), Catch::Contains("takes 2 arguments"));
  CHECK_THROWS_WITH(parse_cache_policy("h2o(a, 3)"), Catch::Contains("not an integer"));
  CHECK_THROWS_AS(parse_cache_policy("streaming(-1, 3)"), UsageError);
}
