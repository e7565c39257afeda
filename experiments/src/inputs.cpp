// Random, synthetic and .npy inputs (see inputs.hpp for the synthetic construction).
#include "spattn/experiments/inputs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <optional>

#include "spattn/attention/random.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"

namespace spattn::experiments {
namespace {

// Synthetic generator constants (documented in inputs.hpp).
constexpr double kLocalLogit = 10;  // A_local
constexpr double kSinkLogit = 8;    // A_sink
constexpr double kMatchLogit = 12;  // A_match
constexpr std::int64_t kSinks = 4;
constexpr double kMatchRate = 1.0 / 16;
constexpr double kBaseLambda = 8;
constexpr double kMatchDistance = 4;  // in units of lambda

double normal_cdf(double z) {
  return 0.5 * std::erfc(-z / std::numbers::sqrt2);
}

std::int64_t elements(const std::array<std::int64_t, 4>& shape) {
  return shape[0] * shape[1] * shape[2] * shape[3];
}

// Where a file's rows come from: the first token row of the file that the point's first row reads.
struct Fit {
  std::int64_t token_start = 0;
};

// How a file of shape `have` (4 axes, missing leading ones as 1) serves `shape`: each axis equal
// or 1 (repeated), and the token axis (2) may also be longer: a window of the capture, the first
// or the last nk tokens for k and v, the window's last nq tokens for q. UsageError naming the
// file otherwise.
Fit plan_fit(const std::string& path, const std::vector<std::int64_t>& file_shape,
             const std::array<std::int64_t, 4>& have, const std::array<std::int64_t, 4>& shape,
             const char* axes, bool query, const AttentionShape& s, const std::string& tokens) {
  for (int a = 0; a < 4; ++a)
    if (a != 2 && have[a] != shape[a] && have[a] != 1)
      throw UsageError(fmt::format(
          "{} has shape ({}) but the point needs {} = ({}): each axis must equal the point's "
          "or be 1 (repeated), and missing leading axes count as 1",
          path, fmt::join(file_shape, ", "), axes, fmt::join(shape, ", ")));
  Fit fit;
  const std::int64_t t = have[2];
  if (t == shape[2] || t == 1) return fit;
  const bool last = tokens == "last";
  if (t < shape[2])
    throw UsageError(fmt::format(
        "{} has {} tokens (axis {} of shape ({})) but the point needs {} {}: a capture must hold "
        "at least the point's tokens (the {} {} are used) or exactly 1",
        path, t, file_shape.size() - 2, fmt::join(file_shape, ", "), shape[2],
        query ? "queries" : "keys", last ? "last" : "first", shape[2]));
  if (query && !last && t < s.nk)
    throw UsageError(fmt::format(
        "{} has {} tokens: more than the point's {} queries but fewer than its {} keys; the "
        "queries are the last {} of the first {} tokens, so give {} or at least {} tokens",
        path, t, s.nq, s.nk, s.nq, s.nk, s.nq, s.nk));
  fit.token_start = last ? t - shape[2] : (query ? s.nk - s.nq : 0);
  return fit;
}

// f's tensor fitted to `shape` as plan_fit says.
Tensor fit_to(InputFile&& f, const std::array<std::int64_t, 4>& shape, const char* axes, bool query,
              const AttentionShape& s, const std::string& tokens) {
  const auto& have = f.tensor.shape;
  const Fit fit = plan_fit(f.path, f.file_shape, have, shape, axes, query, s, tokens);
  if (have == shape) return std::move(f.tensor);
  Tensor out(shape[0], shape[1], shape[2], shape[3]);
  const ConstTensorView src = f.tensor.view();
  const TensorView dst = out.view();
  for (std::int64_t b = 0; b < shape[0]; ++b)
    for (std::int64_t h = 0; h < shape[1]; ++h)
      for (std::int64_t n = 0; n < shape[2]; ++n) {
        const float* r = src.row(have[0] == 1 ? 0 : b, have[1] == 1 ? 0 : h,
                                 have[2] == 1 ? 0 : fit.token_start + n);
        float* d = dst.row(b, h, n);
        for (std::int64_t x = 0; x < shape[3]; ++x) d[x] = r[have[3] == 1 ? 0 : x];
      }
  return out;
}

// A file's shape as 4 axes, missing leading ones set to 1.
std::array<std::int64_t, 4> as_four_axes(const std::vector<std::int64_t>& shape) {
  std::array<std::int64_t, 4> out{1, 1, 1, 1};
  std::copy(shape.begin(), shape.end(), out.end() - shape.size());
  return out;
}

// Checks dtype, rank and axes of an input file (header only).
void check_input_header(const NpyArray& a, const std::string& path) {
  if (a.descr != "<f4" && a.descr != "<f2" && a.descr != "<u2")
    throw UsageError(fmt::format(
        "{}: dtype '{}' is not allowed: inputs must be float32 ('<f4'), float16 ('<f2') or "
        "bfloat16 bits saved as uint16 ('<u2')",
        path, a.descr));
  if (a.shape.size() < 2 || a.shape.size() > 4)
    throw UsageError(
        fmt::format("{}: shape ({}) has {} dimensions: inputs must be [batch, heads, tokens, "
                    "head dim], [heads, tokens, head dim] or [tokens, head dim]",
                    path, fmt::join(a.shape, ", "), a.shape.size()));
  for (std::int64_t d : a.shape)
    if (d < 1)
      throw UsageError(
          fmt::format("{}: shape ({}) has an empty axis", path, fmt::join(a.shape, ", ")));
}

}  // namespace

namespace {

// Index [b, h, n, x] of the first NaN or Inf of t in C order, if any.
std::optional<std::array<std::int64_t, 4>> first_non_finite(const ConstTensorView& t) {
  for (std::int64_t b = 0; b < t.shape[0]; ++b)
    for (std::int64_t h = 0; h < t.shape[1]; ++h)
      for (std::int64_t n = 0; n < t.shape[2]; ++n)
        for (std::int64_t x = 0; x < t.shape[3]; ++x)
          if (!std::isfinite(t.at(b, h, n, x))) return std::array<std::int64_t, 4>{b, h, n, x};
  return std::nullopt;
}

}  // namespace

void check_finite(const ConstTensorView& t, const std::string& what, int rank) {
  const auto at = first_non_finite(t);
  if (!at) return;
  const auto [b, h, n, x] = *at;
  rank = std::clamp(rank, 1, 4);
  const std::vector<std::int64_t> shown(at->end() - rank, at->end());
  throw UsageError(fmt::format(
      "{}: element [{}] (flat index {}) is {}: inputs must be finite", what, fmt::join(shown, ", "),
      ((b * t.shape[1] + h) * t.shape[2] + n) * t.shape[3] + x, t.at(b, h, n, x)));
}

void check_output_finite(const ConstTensorView& o, const ConstTensorView& lse) {
  std::string where;
  if (const auto at = first_non_finite(o)) {
    const auto [b, h, i, x] = *at;
    where = fmt::format("o[{}, {}, {}, {}] is {}", b, h, i, x, o.at(b, h, i, x));
  } else {
    // -inf is a fully masked row's LSE.
    for (std::int64_t b = 0; b < lse.shape[0] && where.empty(); ++b)
      for (std::int64_t h = 0; h < lse.shape[1] && where.empty(); ++h)
        for (std::int64_t i = 0; i < lse.shape[2] && where.empty(); ++i) {
          const float l = lse.at(b, h, i, 0);
          if (!std::isfinite(l) && l != -std::numeric_limits<float>::infinity())
            where = fmt::format("lse[{}, {}, {}] is {}", b, h, i, l);
        }
  }
  if (where.empty()) return;
  throw Error(fmt::format(
      "{} although q, k and v are finite: a logit q·k·scale overflowed float32 (|logit| > "
      "3.4e38), and attention is computed in float32; scale the inputs down",
      where));
}

InputFile read_input_npy(const std::string& path, std::int64_t max_bytes) {
  NpyArray a = read_npy(path, max_bytes);
  check_input_header(a, path);
  InputFile f;
  f.path = path;
  f.file_shape = a.shape;
  f.tensor.shape = as_four_axes(a.shape);
  if (a.descr == "<u2") {  // bfloat16 bits
    f.tensor.values.resize(static_cast<std::size_t>(a.size()));
    for (std::size_t k = 0; k < f.tensor.values.size(); ++k) {
      std::uint16_t b;
      std::memcpy(&b, a.data.data() + 2 * k, 2);
      f.tensor.values[k] = bfloat16_to_float(b);
    }
  } else {
    f.tensor.values = a.as_float32();
  }
  a.data = {};
  check_finite(f.tensor.view(), path, static_cast<int>(a.shape.size()));
  return f;
}

// Whether two file shapes have the same axes but for the last (the head dim, d and d_v).
bool same_but_head_dim(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
  return a.size() == b.size() && !a.empty() && std::equal(a.begin(), a.end() - 1, b.begin());
}

QkvFiles read_qkv_npy(const std::filesystem::path& dir, std::int64_t max_bytes) {
  QkvFiles f{read_input_npy((dir / "q.npy").string(), max_bytes),
             read_input_npy((dir / "k.npy").string(), max_bytes),
             read_input_npy((dir / "v.npy").string(), max_bytes)};
  if (!same_but_head_dim(f.k.file_shape, f.v.file_shape))
    throw UsageError(fmt::format(
        "{} has shape ({}) but {} has ({}): k and v must have the same shape but for the head "
        "dim (last axis)",
        f.k.path, fmt::join(f.k.file_shape, ", "), f.v.path, fmt::join(f.v.file_shape, ", ")));
  return f;
}

Qkv random_inputs(const AttentionShape& s, std::uint64_t seed) {
  Qkv in{Tensor(s.batch, s.q_heads, s.nq, s.dim), Tensor(s.batch, s.kv_heads, s.nk, s.dim),
         Tensor(s.batch, s.kv_heads, s.nk, s.value_dim())};
  fill_normal(in.q.view(), seed, 0);
  fill_normal(in.k.view(), seed, 1);
  fill_normal(in.v.view(), seed, 2);
  return in;
}

Qkv synthetic_inputs(const AttentionShape& s, std::uint64_t seed) {
  Qkv in = random_inputs(s, seed);  // content dims and V
  Tensor uniforms(s.batch, s.q_heads, s.nq, 2);
  fill_normal(uniforms.view(), seed, 3);
  const std::int64_t d = s.dim, pairs = d / 4;
  const bool has_sink = d - 2 * pairs >= 2;
  const std::int64_t c0 = 2 * pairs + (has_sink ? 1 : 0);  // first content dim
  const double sqrt_d = std::sqrt(static_cast<double>(d));
  const double amp = pairs > 0 ? std::sqrt(kLocalLogit * sqrt_d / static_cast<double>(pairs)) : 0;
  const float sink = static_cast<float>(std::sqrt(kSinkLogit * sqrt_d));
  const TensorView q = in.q.view(), k = in.k.view();
  const ConstTensorView u = uniforms.view();

  tbb::parallel_for(std::int64_t{0}, s.batch * s.kv_heads, [&](std::int64_t task) {
    const std::int64_t b = task / s.kv_heads, g = task % s.kv_heads;
    const double lambda = kBaseLambda * static_cast<double>(std::int64_t{1} << (g % 4));
    std::vector<double> w(static_cast<std::size_t>(pairs));
    for (std::int64_t f = 0; f < pairs; ++f)
      w[f] = std::tan(std::numbers::pi * (static_cast<double>(f) + 0.5) /
                      (2.0 * static_cast<double>(pairs))) /
             lambda;
    // Position and sink dims (in double: w_f p reaches 1e6 radians at a million tokens).
    auto place = [&](float* row, std::int64_t pos, bool sink_on) {
      for (std::int64_t f = 0; f < pairs; ++f) {
        const double angle = w[f] * static_cast<double>(pos);
        row[2 * f] = static_cast<float>(amp * std::cos(angle));
        row[2 * f + 1] = static_cast<float>(amp * std::sin(angle));
      }
      if (has_sink) row[2 * pairs] = sink_on ? sink : 0.0f;
    };
    for (std::int64_t j = 0; j < s.nk; ++j) place(k.row(b, g, j), j, j < kSinks);
    const std::int64_t h0 = g * s.group();
    for (std::int64_t h = h0; h < h0 + s.group(); ++h)
      for (std::int64_t i = 0; i < s.nq; ++i) place(q.row(b, h, i), i + s.nk - s.nq, true);
    // Long-range matches, in order of query head, then query.
    const auto min_back = static_cast<std::int64_t>(kMatchDistance * lambda);
    for (std::int64_t h = h0; h < h0 + s.group(); ++h)
      for (std::int64_t i = 0; i < s.nq; ++i) {
        const std::int64_t pos = i + s.nk - s.nq;
        if (pos - min_back < kSinks || c0 >= d) continue;
        if (normal_cdf(u.at(b, h, i, 0)) >= kMatchRate) continue;
        const std::int64_t span = pos - min_back - kSinks + 1;
        const std::int64_t j =
            kSinks + std::min(span - 1, static_cast<std::int64_t>(normal_cdf(u.at(b, h, i, 1)) *
                                                                  static_cast<double>(span)));
        const float* qi = q.row(b, h, i);
        double norm2 = 0;
        for (std::int64_t x = c0; x < d; ++x) norm2 += static_cast<double>(qi[x]) * qi[x];
        if (norm2 <= 0) continue;
        const double c = kMatchLogit * sqrt_d / norm2;
        float* kj = k.row(b, g, j);
        for (std::int64_t x = c0; x < d; ++x) kj[x] = static_cast<float>(c * qi[x]);
      }
  });
  return in;
}

PlantedSpec planted_spec(const AttentionShape& s) {
  PlantedSpec p;
  p.beta = 4;
  p.columns = {s.nk / 3, 2 * s.nk / 3};
  for (std::int64_t o : {std::int64_t{500}, s.nk / 4})
    if (o > 0 && o < s.nk && (p.offsets.empty() || p.offsets.back() != o)) p.offsets.push_back(o);
  p.needles = spread_needles(s, 16);
  p.topic = 1024;
  return p;
}

Qkv make_inputs(const InputSpec& spec, const AttentionShape& s, std::uint64_t seed,
                std::int64_t max_bytes) {
  if (spec.kind == "random") return random_inputs(s, seed);
  if (spec.kind == "planted") {
    PlantedInputs p = planted_inputs(s, planted_spec(s), seed);
    return Qkv{std::move(p.q), std::move(p.k), std::move(p.v)};
  }
  if (spec.kind == "synthetic") return synthetic_inputs(s, seed);
  if (spec.kind != "npy")
    throw UsageError(fmt::format(
        "inputs kind '{}' is not allowed: use random, synthetic, planted or npy", spec.kind));
  if (spec.npy_dir.empty())
    throw UsageError("inputs kind 'npy' needs a directory holding q.npy, k.npy and v.npy");
  QkvFiles f = read_qkv_npy(input_dir(spec, s.nq), max_bytes);
  Qkv in;
  in.q = fit_to(std::move(f.q), {s.batch, s.q_heads, s.nq, s.dim}, "[batch, heads, n, head_dim]",
                true, s, spec.tokens);
  in.k = fit_to(std::move(f.k), {s.batch, s.kv_heads, s.nk, s.dim},
                "[batch, kv_heads, n, head_dim]", false, s, spec.tokens);
  in.v = fit_to(std::move(f.v), {s.batch, s.kv_heads, s.nk, s.value_dim()},
                "[batch, kv_heads, n, d_v]", false, s, spec.tokens);
  return in;
}

std::filesystem::path input_dir(const InputSpec& spec, std::int64_t n) {
  return spec_at(spec.npy_dir, n);
}

std::int64_t check_npy_inputs(const InputSpec& spec, const AttentionShape& s) {
  const std::filesystem::path dir = input_dir(spec, s.nq);
  std::int64_t scratch = 0;
  std::vector<std::int64_t> kv_shape;
  for (const char* name : {"q", "k", "v"}) {
    const std::string path = (dir / (std::string(name) + ".npy")).string();
    const NpyArray a = read_npy_header(path);
    check_input_header(a, path);
    const bool query = name[0] == 'q';
    if (!query && !kv_shape.empty() && !same_but_head_dim(a.shape, kv_shape))
      throw UsageError(fmt::format(
          "{} has shape ({}) but {} has ({}): k and v must have the same shape but for the head "
          "dim (last axis)",
          (dir / "k.npy").string(), fmt::join(kv_shape, ", "), path, fmt::join(a.shape, ", ")));
    const bool value = !query && !kv_shape.empty();
    if (!query) kv_shape = a.shape;
    plan_fit(path, a.shape, as_four_axes(a.shape),
             query ? std::array<std::int64_t, 4>{s.batch, s.q_heads, s.nq, s.dim}
                   : std::array<std::int64_t, 4>{s.batch, s.kv_heads, s.nk,
                                                 value ? s.value_dim() : s.dim},
             query ? "[batch, heads, n, head_dim]"
                   : (value ? "[batch, kv_heads, n, d_v]" : "[batch, kv_heads, n, head_dim]"),
             query, s, spec.tokens);
    // The raw file and its float copy, beside the tensors already made.
    scratch = std::max(scratch, a.size() * (a.item_size() + std::int64_t{sizeof(float)}));
  }
  return scratch;
}

ScoreBias score_bias_for(std::vector<float> values, const std::vector<std::int64_t>& shape,
                         const Geometry& g, const std::string& what) {
  const std::int64_t qb = g.q_blocks(), kb = g.k_blocks();
  const bool three = shape.size() == 3 && (shape[0] == 1 || shape[0] == g.heads);
  const bool element = three && shape[1] == g.nq && shape[2] == g.nk;
  const bool block = three && shape[1] == qb && shape[2] == kb;
  if (!element && !block)
    throw UsageError(fmt::format(
        "{}: shape [{}] is not allowed: use [{} or 1, {}, {}] (heads or 1, nq, nk: one value per "
        "pair) or [{} or 1, {}, {}] (heads or 1, query blocks, key blocks: one value per {} x {} "
        "tile)",
        what, fmt::join(shape, ", "), g.heads, g.nq, g.nk, g.heads, qb, kb, g.block_q, g.block_k));
  for (std::size_t e = 0; e < values.size(); ++e)
    if (!std::isfinite(values[e]))
      throw UsageError(
          fmt::format("{}: value {} at flat index {} is not finite", what, values[e], e));
  return make_score_bias(std::move(values), shape[0], shape[1], shape[2], element ? 1 : g.block_q,
                         element ? 1 : g.block_k);
}

std::string input_name(const InputSpec& spec) {
  return spec.name();
}

std::int64_t input_scratch_bytes(const InputSpec& spec, const AttentionShape& s) {
  if (spec.kind == "synthetic")
    return elements({s.batch, s.q_heads, s.nq, 2}) * static_cast<std::int64_t>(sizeof(float));
  if (spec.kind == "npy")
    return 2 *
           std::max(elements({s.batch, s.q_heads, s.nq, s.dim}),
                    elements({s.batch, s.kv_heads, s.nk, std::max(s.dim, s.value_dim())})) *
           static_cast<std::int64_t>(sizeof(float));
  return 0;
}

}  // namespace spattn::experiments
