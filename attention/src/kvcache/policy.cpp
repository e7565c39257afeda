// The cache policies of kvcache/policy.hpp.
#include "spattn/attention/kvcache/policy.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>

#include "spattn/attention/select/quest_bound.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/selector.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn {
namespace {

constexpr std::int64_t kMaxH2OPrompt = 65536;

// Indices of the `count` largest scores, ties to the lower index, returned sorted increasing.
std::vector<std::int64_t> top_sorted(const std::vector<double>& score, std::int64_t count) {
  std::vector<std::int64_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  count = std::min<std::int64_t>(count, static_cast<std::int64_t>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + count, idx.end(), [&](auto a, auto b) {
    return score[a] > score[b] || (score[a] == score[b] && a < b);
  });
  idx.resize(static_cast<std::size_t>(count));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Logit of query row `qrow` (d floats) against stored key slot s of head h, in double.
double logit(const KVView& k, std::int64_t h, std::int64_t s, const float* qrow, std::int64_t sx,
             double scale) {
  double dot = 0;
  for (std::int64_t x = 0; x < k.dim(); ++x)
    dot += static_cast<double>(qrow[x * sx]) * k.value(0, h, s, x);
  return scale * dot;
}

}  // namespace

std::int64_t policy_cache_slots(const CachePolicy& p, std::int64_t prompt, std::int64_t steps) {
  switch (p.kind) {
    case CachePolicyKind::Full:
    case CachePolicyKind::Quest:
      return prompt + steps;
    case CachePolicyKind::Streaming:
      return std::min(prompt + steps, p.sink + p.recent);
    case CachePolicyKind::H2O:
      return std::max(prompt, p.heavy + p.recent + 1);
    case CachePolicyKind::SnapKV:
      return std::max(prompt, std::min(prompt, p.capacity) + steps);
  }
  return prompt + steps;
}

PolicyCache::PolicyCache(const CachePolicy& policy, const KVCacheConfig& config,
                         std::int64_t q_heads)
    : policy_(policy),
      cache_([&] {
        KVCacheConfig c = config;
        if (policy.kind == CachePolicyKind::Quest) c.page = policy.page;
        return c;
      }()),
      q_heads_(q_heads) {
  if (q_heads < 1 || q_heads % config.heads != 0)
    throw UsageError(fmt::format("policy cache: {} query heads are not a multiple of {} K/V heads",
                                 q_heads, config.heads));
  if (policy.kind == CachePolicyKind::H2O)
    acc_.assign(static_cast<std::size_t>(config.heads * config.capacity), 0.0);
  last_read_.resize(static_cast<std::size_t>(q_heads));
}

void PolicyCache::add_token(const ConstTensorView& k, const ConstTensorView& v, std::int64_t t) {
  const std::int64_t pos = seen_++;
  if (policy_.kind == CachePolicyKind::Streaming && cache_.size() == policy_.sink + policy_.recent)
    return cache_.overwrite(policy_.sink + (pos - policy_.sink) % policy_.recent, k, v, t, pos);
  cache_.append(k, v, t, 1, pos);
  for (std::int64_t h = 0; h < cache_.config().heads && !acc_.empty(); ++h)
    acc_[static_cast<std::size_t>(h * cache_.capacity() + cache_.size() - 1)] = 0;
}

void PolicyCache::prefill(const ConstTensorView& q, const ConstTensorView& k,
                          const ConstTensorView& v) {
  const std::int64_t N = k.tokens(), H = cache_.config().heads;
  const std::int64_t group = q_heads_ / H;
  if (policy_.kind == CachePolicyKind::Streaming) {
    const std::int64_t ring = policy_.sink + policy_.recent;
    const std::int64_t first = std::min(N, ring);
    cache_.append(k, v, 0, first, 0);
    seen_ = first;
    for (std::int64_t p = std::max(first, N - policy_.recent); p < N; ++p) {
      seen_ = p;
      add_token(k, v, p);
    }
    seen_ = N;
    return;
  }
  cache_.append(k, v, 0, N, seen_);
  seen_ += N;
  if (policy_.kind != CachePolicyKind::H2O && policy_.kind != CachePolicyKind::SnapKV) return;
  const bool h2o = policy_.kind == CachePolicyKind::H2O;
  if (h2o && N > kMaxH2OPrompt)
    throw UsageError(
        fmt::format("h2o: a prompt of {} tokens is too long to score every row "
                    "(N^2 work; allowed: N <= {})",
                    N, kMaxH2OPrompt));
  // q holds the last q.tokens() prompt rows: h2o needs all N, snapkv the window.
  const std::int64_t rows_needed = h2o ? N : std::min(N, policy_.window);
  if (q.tokens() < rows_needed || q.tokens() > N || q.heads() != q_heads_ || q.dim() != k.dim())
    throw UsageError(
        fmt::format("{}: prompt queries {} do not fit k {} ({} query heads, the last "
                    "{}..{} prompt rows)",
                    policy_.spec(), q.shape_string(), k.shape_string(), q_heads_, rows_needed, N));
  const std::int64_t q0 = N - q.tokens();    // prompt row of q's row 0
  if (!h2o && N < policy_.capacity) return;  // SnapKV leaves short prompts alone
  const KVView kv = cache_.keys();
  const double scale = 1.0 / std::sqrt(static_cast<double>(k.dim()));
  const std::int64_t first_row = h2o ? 0 : N - policy_.window;
  std::vector<std::vector<std::int64_t>> keep(static_cast<std::size_t>(H));
  std::vector<double> s(static_cast<std::size_t>(N));
  for (std::int64_t g = 0; g < H; ++g) {
    std::vector<double> score(static_cast<std::size_t>(N), 0.0);
    for (std::int64_t qh = g * group; qh < (g + 1) * group; ++qh)
      for (std::int64_t i = first_row; i < N; ++i) {
        double mx = -std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j <= i; ++j) {
          s[j] = logit(kv, g, j, q.row(0, qh, i - q0), q.stride[3], scale);
          mx = std::max(mx, s[j]);
        }
        double l = 0;
        for (std::int64_t j = 0; j <= i; ++j) l += std::exp(s[j] - mx);
        for (std::int64_t j = 0; j <= i; ++j) score[j] += std::exp(s[j] - mx) / l;
      }
    auto& kg = keep[static_cast<std::size_t>(g)];
    if (h2o) {
      for (std::int64_t j = 0; j < N; ++j)
        acc_[static_cast<std::size_t>(g * cache_.capacity() + j)] = score[j];
      if (N <= policy_.heavy + policy_.recent) continue;
      score.resize(static_cast<std::size_t>(N - policy_.recent));
      kg = top_sorted(score, policy_.heavy);
      for (std::int64_t j = N - policy_.recent; j < N; ++j) kg.push_back(j);
    } else {
      const std::int64_t older = N - policy_.window, r = policy_.pool / 2;
      std::vector<double> pooled(static_cast<std::size_t>(older));
      for (std::int64_t j = 0; j < older; ++j) {
        double m = -std::numeric_limits<double>::infinity();
        for (std::int64_t t = std::max<std::int64_t>(0, j - r); t <= std::min(older - 1, j + r);
             ++t)
          m = std::max(m, score[t]);
        pooled[j] = m;
      }
      kg = top_sorted(pooled, policy_.capacity - policy_.window);
      for (std::int64_t j = older; j < N; ++j) kg.push_back(j);
    }
  }
  if (h2o && N <= policy_.heavy + policy_.recent) return;
  if (h2o) {
    std::vector<double> moved(acc_.size(), 0.0);
    for (std::int64_t g = 0; g < H; ++g)
      for (std::size_t i = 0; i < keep[g].size(); ++i)
        moved[g * cache_.capacity() + i] = acc_[g * cache_.capacity() + keep[g][i]];
    acc_ = std::move(moved);
  }
  cache_.compact(keep);  // slots were positions: keep holds sorted slots
}

void PolicyCache::h2o_accumulate(const ConstTensorView& q, const TensorView& lse) {
  const KVView kv = cache_.keys();
  const std::int64_t H = cache_.config().heads, group = q_heads_ / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(kv.dim()));
  for (std::int64_t qh = 0; qh < q_heads_; ++qh) {
    const std::int64_t g = qh / group;
    const double l = lse.at(0, qh, 0, 0);
    for (std::int64_t s = 0; s < cache_.size(); ++s)
      acc_[static_cast<std::size_t>(g * cache_.capacity() + s)] +=
          std::exp(logit(kv, g, s, q.row(0, qh, 0), q.stride[3], scale) - l);
  }
}

void PolicyCache::h2o_evict() {
  const std::int64_t H = cache_.config().heads;
  while (cache_.size() > policy_.heavy + policy_.recent) {
    std::vector<std::int64_t> victim(static_cast<std::size_t>(H), -1);
    for (std::int64_t g = 0; g < H; ++g) {
      std::int64_t best = -1;
      for (std::int64_t s = 0; s < cache_.size(); ++s) {
        const std::int64_t p = cache_.position(g, s);
        if (p >= seen_ - policy_.recent) continue;
        const double a = acc_[g * cache_.capacity() + s];
        if (best < 0) {
          best = s;
          continue;
        }
        const double b = acc_[g * cache_.capacity() + best];
        // Evict the smallest acc; among equals the higher position (lower positions rank first).
        if (a < b || (a == b && p > cache_.position(g, best))) best = s;
      }
      victim[static_cast<std::size_t>(g)] = best;
    }
    for (std::int64_t g = 0; g < H; ++g) {
      const std::size_t last = static_cast<std::size_t>(g * cache_.capacity() + cache_.size() - 1);
      acc_[g * cache_.capacity() + victim[g]] = acc_[last];
      acc_[last] = 0;
    }
    cache_.remove(victim);
  }
}

Layout PolicyCache::quest_layout(const ConstTensorView& q) {
  const std::int64_t H = cache_.config().heads, group = q_heads_ / H, d = q.dim();
  const std::int64_t P = policy_.page, np = cache_.pages(), nk = cache_.size();
  std::vector<std::shared_ptr<const SelectedHead>> heads;
  for (std::int64_t qh = 0; qh < q_heads_; ++qh) {
    const std::int64_t g = qh / group;
    const float* qr = q.row(0, qh, 0);
    std::vector<double> bound(static_cast<std::size_t>(np - 1));
    for (std::int64_t p = 0; p + 1 < np; ++p)
      bound[p] = quest_page_bound(qr, q.stride[3], cache_.page_min(g, p), cache_.page_max(g, p), d);
    std::vector<std::int64_t> pages = top_sorted(bound, policy_.budget / P - 1);
    pages.push_back(np - 1);
    std::vector<KeyRange> ranges;
    auto& read = last_read_[static_cast<std::size_t>(qh)];
    read.clear();
    for (std::int64_t p : pages) {
      ranges.push_back({p * P, std::min(nk, (p + 1) * P)});
      for (std::int64_t s = p * P; s < std::min(nk, (p + 1) * P); ++s)
        read.push_back(cache_.position(g, s));
    }
    auto sh = std::make_shared<SelectedHead>();
    sh->causal = false;
    sh->group_rows = 1;
    sh->origin = nk - 1;
    sh->add_group(std::move(ranges), nk);
    heads.push_back(std::move(sh));
  }
  const SelectedPattern pattern(policy_.spec(), std::move(heads));
  const int bk = P % 128 == 0 ? 128 : P % 64 == 0 ? 64 : P % 32 == 0 ? 32 : 16;
  return build_layout(pattern, Geometry{1, nk, static_cast<int>(q_heads_), 16, bk});
}

DecodeStats PolicyCache::step(const ConstTensorView& q, const ConstTensorView& k,
                              const ConstTensorView& v, const TensorView& o, const TensorView& lse,
                              const DecodeOptions& options) {
  if (q.tokens() != 1 || k.tokens() != 1 || v.tokens() != 1)
    throw UsageError(fmt::format("policy cache step: one token at a time (q {}, k {})",
                                 q.shape_string(), k.shape_string()));
  add_token(k, v, 0);
  DecodeStats st;
  if (policy_.kind == CachePolicyKind::Quest) {
    const Layout layout = quest_layout(q);
    st = decode_attention(q, cache_.keys(), cache_.values(), layout, o, lse, options);
    st.kv_bytes_read += q_heads_ * 2 * cache_.pages() * cache_.config().dim * 4;
  } else {
    static const PatternPtr dense = parse_spec("dense");
    const Layout layout = build_layout(*dense, Geometry{1, cache_.size(), 1, 16, 64});
    st = decode_attention(q, cache_.keys(), cache_.values(), layout, o, lse, options);
  }
  if (policy_.kind == CachePolicyKind::H2O) {
    h2o_accumulate(q, lse);
    h2o_evict();
  }
  return st;
}

std::vector<std::int64_t> PolicyCache::kept(std::int64_t h) const {
  std::vector<std::int64_t> p;
  for (std::int64_t s = 0; s < cache_.size(); ++s) p.push_back(cache_.position(h, s));
  std::sort(p.begin(), p.end());
  return p;
}

std::vector<std::int64_t> PolicyCache::last_read(std::int64_t qh) const {
  if (policy_.kind != CachePolicyKind::Quest) return kept(qh / (q_heads_ / cache_.config().heads));
  std::vector<std::int64_t> r = last_read_[static_cast<std::size_t>(qh)];
  std::sort(r.begin(), r.end());
  return r;
}

double PolicyCache::accumulated(std::int64_t h, std::int64_t position) const {
  if (acc_.empty()) return 0;
  for (std::int64_t s = 0; s < cache_.size(); ++s)
    if (cache_.position(h, s) == position) return acc_[h * cache_.capacity() + s];
  return 0;
}

}  // namespace spattn
