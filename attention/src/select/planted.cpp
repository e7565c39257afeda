#include "spattn/attention/select/planted.hpp"

#include <cmath>

#include "spattn/attention/random.hpp"

namespace spattn {
namespace {

// A unit vector of d values, drawn from stream `stream` of `seed` at index `index`.
std::vector<float> unit(std::int64_t d, std::uint64_t seed, std::uint64_t stream,
                        std::int64_t index) {
  Tensor t(1, 1, 1, d);
  fill_normal(t.view(), seed ^ (0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(index + 1)),
              stream);
  double n = 0;
  for (float x : t.values) n += static_cast<double>(x) * x;
  n = std::sqrt(n);
  for (float& x : t.values) x = static_cast<float>(x / n);
  return t.values;
}

void add(TensorView t, std::int64_t b, std::int64_t h, std::int64_t row,
         const std::vector<float>& u, double w) {
  for (std::int64_t x = 0; x < t.dim(); ++x) t.at(b, h, row, x) += static_cast<float>(w * u[x]);
}

}  // namespace

PlantedInputs planted_inputs(const AttentionShape& s, const PlantedSpec& spec, std::uint64_t seed) {
  PlantedInputs in{Tensor(s.batch, s.q_heads, s.nq, s.dim),
                   Tensor(s.batch, s.kv_heads, s.nk, s.dim),
                   Tensor(s.batch, s.kv_heads, s.nk, s.dim)};
  fill_normal(in.q.view(), seed, 0);
  fill_normal(in.k.view(), seed, 1);
  fill_normal(in.v.view(), seed, 2);
  const std::int64_t group = s.q_heads / s.kv_heads, off = s.nk - s.nq;
  TensorView q = in.q.view(), k = in.k.view();
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t kh = 0; kh < s.kv_heads; ++kh) {
      const std::uint64_t st = 100 + static_cast<std::uint64_t>(b * s.kv_heads + kh) * 8;
      for (std::size_t c = 0; c < spec.columns.size(); ++c) {
        if (spec.columns[c] >= s.nk) continue;
        const auto w = unit(s.dim, seed, st, static_cast<std::int64_t>(c));
        add(k, b, kh, spec.columns[c], w, spec.beta);
        for (std::int64_t h = kh * group; h < (kh + 1) * group; ++h)
          for (std::int64_t i = 0; i < s.nq; ++i) add(q, b, h, i, w, spec.beta / 2);
      }
      if (!spec.offsets.empty()) {
        for (std::int64_t j = 0; j < s.nk; ++j)
          add(k, b, kh, j, unit(s.dim, seed, st + 1, j), spec.beta);
        for (std::int64_t o : spec.offsets)
          for (std::int64_t h = kh * group; h < (kh + 1) * group; ++h)
            for (std::int64_t i = 0; i < s.nq; ++i)
              if (const std::int64_t j = i + off - o; j >= 0 && j < s.nk)
                add(q, b, h, i, unit(s.dim, seed, st + 1, j), spec.beta);
      }
      for (std::size_t n = 0; n < spec.needles.size(); ++n) {
        const auto [row, key] = spec.needles[n];
        if (row >= s.nq || key >= s.nk) continue;
        const auto u = unit(s.dim, seed, st + 2, static_cast<std::int64_t>(n));
        add(k, b, kh, key, u, 2 * spec.beta);
        for (std::int64_t h = kh * group; h < (kh + 1) * group; ++h)
          add(q, b, h, row, u, 2 * spec.beta);
      }
      if (spec.topic > 0) {
        for (std::int64_t j = 0; j < s.nk; ++j)
          add(k, b, kh, j, unit(s.dim, seed, st + 3, j / spec.topic), 1.0);
        for (std::int64_t h = kh * group; h < (kh + 1) * group; ++h)
          for (std::int64_t i = 0; i < s.nq; ++i)
            add(q, b, h, i, unit(s.dim, seed, st + 3, (i + off) / spec.topic), 1.0);
      }
    }
  return in;
}

std::vector<std::pair<std::int64_t, std::int64_t>> spread_needles(const AttentionShape& s,
                                                                  std::int64_t count) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  const std::int64_t first = s.nq - std::max<std::int64_t>(1, s.nq / 4), off = s.nk - s.nq;
  for (std::int64_t n = 0; n < count; ++n) {
    const std::int64_t row = first + (s.nq - first) * n / std::max<std::int64_t>(count, 1);
    const std::int64_t p = row + off;
    if (p < 0) continue;
    out.emplace_back(row, (p * (2 * n + 1)) / (2 * count + 1));
  }
  return out;
}

}  // namespace spattn
