// The block-sparse flash executor against an independent double-precision dense evaluation of
// the written rule (softmax over the keys the layout allows), plus its edge cases, determinism
// across thread counts and its workspace bound.
//
// Error measure: for an output tensor, max |o - ref| / max |ref| over all its elements (the
// error relative to the output's scale, so near-zero entries of a mostly-cancelling average do
// not blow it up); for LSE, max |lse - ref| / max(1, |ref|) per element.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "spattn/attention/attention.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using spattn::AttentionOptions;
using spattn::ConstTensorView;
using spattn::Layout;
using spattn::Tensor;

constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor random_tensor(std::int64_t b, std::int64_t h, std::int64_t n, std::int64_t d, unsigned seed,
                     float lo = -1.0f, float hi = 1.0f) {
  Tensor t(b, h, n, d);
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& x : t.values) x = dist(gen);
  return t;
}

Layout make_layout(const std::string& spec, std::int64_t nq, std::int64_t nk, int heads, int bq,
                   int bk) {
  return spattn::build_layout(*spattn::parse_spec(spec), spattn::Geometry{nq, nk, heads, bq, bk});
}

struct Reference {
  std::vector<double> o;    // [B, Hq, nq, d]
  std::vector<double> lse;  // [B, Hq, nq]
};

// Dense double-precision evaluation: for each query row, the allowed keys are those the layout
// keeps (BlockLayout::allows, a binary search over the row's tiles and its bitset); softmax of
// scale * q.k over them; rows with no allowed key give zeros and -inf. Rows outside `rows` (when
// given) are skipped and left 0.
Reference reference(const ConstTensorView& q, const ConstTensorView& k, const ConstTensorView& v,
                    const Layout& layout, double scale,
                    const std::vector<std::int64_t>& rows = {}) {
  const std::int64_t B = q.batch(), H = q.heads(), nq = q.tokens(), nk = k.tokens(), d = q.dim(),
                     group = H / k.heads();
  Reference r;
  r.o.assign(static_cast<std::size_t>(B * H * nq * d), 0.0);
  r.lse.assign(static_cast<std::size_t>(B * H * nq), 0.0);
  std::vector<std::int64_t> all;
  if (rows.empty())
    for (std::int64_t i = 0; i < nq; ++i) all.push_back(i);
  const std::vector<std::int64_t>& which = rows.empty() ? all : rows;
  std::vector<double> s(static_cast<std::size_t>(nk));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h) {
      const spattn::BlockLayout& bl = layout.head(layout.geometry.heads == 1 ? 0 : h);
      const std::int64_t kvh = h / group;
      for (std::int64_t i : which) {
        double mx = -kInf;
        for (std::int64_t j = 0; j < nk; ++j) {
          if (!bl.allows(i, j)) {
            s[j] = -kInf;
            continue;
          }
          double dot = 0;
          for (std::int64_t x = 0; x < d; ++x)
            dot += static_cast<double>(q.at(b, h, i, x)) * k.at(b, kvh, j, x);
          s[j] = scale * dot;
          mx = std::max(mx, s[j]);
        }
        double* o = &r.o[((b * H + h) * nq + i) * d];
        double& lse = r.lse[(b * H + h) * nq + i];
        if (mx == -kInf) {
          lse = -kInf;
          continue;
        }
        double sum = 0;
        for (std::int64_t j = 0; j < nk; ++j) {
          if (s[j] == -kInf) continue;
          const double p = std::exp(s[j] - mx);
          sum += p;
          for (std::int64_t x = 0; x < d; ++x) o[x] += p * v.at(b, kvh, j, x);
        }
        for (std::int64_t x = 0; x < d; ++x) o[x] /= sum;
        lse = mx + std::log(sum);
      }
    }
  return r;
}

struct Errors {
  double o = 0, lse = 0;
  bool finite = true;
  bool masked_ok = true;  // rows with ref LSE -inf have o = 0 and lse = -inf
};

Errors compare(const Tensor& o, const Tensor& lse, const Reference& ref,
               const std::vector<std::int64_t>& rows = {}) {
  const std::int64_t B = o.shape[0], H = o.shape[1], nq = o.shape[2], d = o.shape[3];
  std::vector<std::int64_t> all;
  if (rows.empty())
    for (std::int64_t i = 0; i < nq; ++i) all.push_back(i);
  const std::vector<std::int64_t>& which = rows.empty() ? all : rows;
  Errors e;
  double diff = 0, scale = 0;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i : which) {
        const std::int64_t row = (b * H + h) * nq + i;
        const double rl = ref.lse[row], fl = lse.values[row];
        if (!std::isfinite(fl) && !(std::isinf(fl) && fl < 0)) e.finite = false;
        if (rl == -kInf) {
          if (fl != -std::numeric_limits<float>::infinity()) e.masked_ok = false;
        } else {
          e.lse = std::max(e.lse, std::abs(fl - rl) / std::max(1.0, std::abs(rl)));
        }
        for (std::int64_t x = 0; x < d; ++x) {
          const double fo = o.values[row * d + x], ro = ref.o[row * d + x];
          if (!std::isfinite(fo)) e.finite = false;
          if (rl == -kInf && fo != 0.0) e.masked_ok = false;
          diff = std::max(diff, std::abs(fo - ro));
          scale = std::max(scale, std::abs(ro));
        }
      }
  e.o = scale > 0 ? diff / scale : diff;
  return e;
}

struct Case {
  std::string spec;
  std::int64_t batch, hq, hkv, nq, nk, d;
  int bq, bk;
  int layout_heads = 1;
};

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.values.size() == b.values.size() &&
         std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("flash executor matches a double-precision dense reference", "[flash]") {
  // Ragged N (not a multiple of the blocks), nq < nk, block_q != block_k, d from 1 to 256,
  // GQA 8:2 and MQA 8:1, batch 3, Full and Partial tiles, per-head layouts.
  const Case cases[] = {
      {"dense", 1, 2, 2, 100, 100, 64, 64, 64},
      {"causal", 1, 2, 1, 130, 130, 7, 32, 16},
      {"sliding(40)", 3, 2, 2, 200, 200, 128, 16, 32},
      {"window(20) | global(3) | random(2, seed=5)", 1, 8, 2, 150, 150, 80, 16, 16},
      {"causal", 1, 8, 1, 70, 200, 1, 64, 128},
      {"window(5, 9)", 1, 1, 1, 97, 97, 256, 128, 64},
      {"sliding(33) | sink(2)", 2, 4, 2, 77, 161, 64, 32, 128},
      {"heads(0..1: causal; 2..3: sliding(10))", 1, 4, 1, 90, 90, 16, 16, 32, 4},
      {"dense - window(3)", 1, 1, 1, 33, 65, 128, 128, 16},
  };
  for (const Case& c : cases) {
    INFO(c.spec << " B=" << c.batch << " Hq=" << c.hq << " Hkv=" << c.hkv << " nq=" << c.nq
                << " nk=" << c.nk << " d=" << c.d << " blocks " << c.bq << "x" << c.bk);
    const Layout L = make_layout(c.spec, c.nq, c.nk, c.layout_heads, c.bq, c.bk);
    const Tensor q = random_tensor(c.batch, c.hq, c.nq, c.d, 1);
    const Tensor k = random_tensor(c.batch, c.hkv, c.nk, c.d, 2);
    const Tensor v = random_tensor(c.batch, c.hkv, c.nk, c.d, 3);
    // Logits of a few units (scale 1.5/sqrt(d) on unit-range data) so the softmax is not flat.
    AttentionOptions opt;
    opt.scale = 1.5f / std::sqrt(static_cast<float>(c.d)) * 3.0f;
    const auto res = spattn::attention(q.view(), k.view(), v.view(), L, opt);
    const Reference ref = reference(q.view(), k.view(), v.view(), L, *opt.scale);
    const Errors e = compare(res.o, res.lse, ref);
    CHECK(e.finite);
    CHECK(e.masked_ok);
    CHECK(e.o <= 1e-5);
    CHECK(e.lse <= 1e-5);
  }
}

TEST_CASE("flash executor: fully masked rows give zeros and -inf, never NaN", "[flash]") {
  // causal with nq = 40 > nk = 30: query i sits at position i - 10, so queries 0..9 allow no
  // key at all. With block_q = 16, queries 0..9 lie in query block 0, whose only kept tile is
  // Partial (queries 10..15 allow keys 0..5), so masked rows occur inside a computed tile.
  const Layout L = make_layout("causal", 40, 30, 1, 16, 16);
  const Tensor q = random_tensor(1, 2, 40, 24, 4);
  const Tensor k = random_tensor(1, 2, 30, 24, 5);
  const Tensor v = random_tensor(1, 2, 30, 24, 6);
  const auto res = spattn::attention(q.view(), k.view(), v.view(), L);
  for (std::int64_t h = 0; h < 2; ++h)
    for (std::int64_t i = 0; i < 10; ++i) {
      CHECK(res.lse.values[h * 40 + i] == -std::numeric_limits<float>::infinity());
      for (std::int64_t x = 0; x < 24; ++x) CHECK(res.o.values[(h * 40 + i) * 24 + x] == 0.0f);
    }
  const Reference ref = reference(q.view(), k.view(), v.view(), L, 1.0 / std::sqrt(24.0));
  const Errors e = compare(res.o, res.lse, ref);
  CHECK(e.finite);
  CHECK(e.masked_ok);
  CHECK(e.o <= 1e-5);
  CHECK(e.lse <= 1e-5);
}

TEST_CASE("flash executor: a row with one allowed key returns that value row", "[flash]") {
  // window(0): query i allows only key p(i) = i. Its logit is the row max, so its weight is
  // e^0 = 1 exactly, the masked lanes contribute exactly 0, l = 1 and O = 1 * v / 1 = v: the
  // output equals the value row bit for bit, and LSE equals the logit.
  const std::int64_t n = 75, d = 33;
  const Layout L = make_layout("window(0)", n, n, 1, 32, 16);
  const Tensor q = random_tensor(1, 1, n, d, 7);
  const Tensor k = random_tensor(1, 1, n, d, 8);
  const Tensor v = random_tensor(1, 1, n, d, 9);
  const auto res = spattn::attention(q.view(), k.view(), v.view(), L);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t x = 0; x < d; ++x) REQUIRE(res.o.values[i * d + x] == v.values[i * d + x]);
  const Reference ref = reference(q.view(), k.view(), v.view(), L, 1.0 / std::sqrt(33.0));
  CHECK(compare(res.o, res.lse, ref).lse <= 1e-5);
}

TEST_CASE("flash executor: logits of magnitude 1e4 stay finite and correct", "[flash]") {
  // Integer q and k in [-60, 60] with d = 16 and scale 1: logits are integers up to 57,600,
  // exact in float, so the only error left is the softmax's own.
  const std::int64_t n = 150, d = 16;
  Tensor q(1, 2, n, d), k(1, 2, n, d), v = random_tensor(1, 2, n, d, 10);
  std::mt19937 gen(11);
  std::uniform_int_distribution<int> dist(-60, 60);
  for (float& x : q.values) x = static_cast<float>(dist(gen));
  for (float& x : k.values) x = static_cast<float>(dist(gen));
  AttentionOptions opt;
  opt.scale = 1.0f;
  for (const char* spec : {"dense", "causal", "sliding(20) | global(2)"}) {
    INFO(spec);
    const Layout L = make_layout(spec, n, n, 1, 32, 32);
    const auto res = spattn::attention(q.view(), k.view(), v.view(), L, opt);
    const Reference ref = reference(q.view(), k.view(), v.view(), L, 1.0);
    double max_logit = 0;
    for (double l : ref.lse) max_logit = std::max(max_logit, std::abs(l));
    CHECK(max_logit > 1e4);  // the test really reaches large logits
    const Errors e = compare(res.o, res.lse, ref);
    CHECK(e.finite);
    CHECK(e.o <= 1e-5);
    CHECK(e.lse <= 1e-5);
  }
}

TEST_CASE("flash executor: strided inputs and outputs give bitwise the contiguous result",
          "[flash]") {
  const std::int64_t B = 2, H = 4, Hkv = 2, n = 90, d = 40;
  const Layout L = make_layout("sliding(30) | global(3)", n, n, 1, 16, 32);
  const Tensor q = random_tensor(B, H, n, d, 12);
  const Tensor k = random_tensor(B, Hkv, n, d, 13);
  const Tensor v = random_tensor(B, Hkv, n, d, 14);
  const auto base = spattn::attention(q.view(), k.view(), v.view(), L);

  // [B, N, H, d] buffers, viewed without copying.
  auto to_bnhd = [&](const Tensor& t) {
    const std::int64_t h = t.shape[1];
    std::vector<float> buf(t.values.size());
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t hh = 0; hh < h; ++hh)
        for (std::int64_t i = 0; i < n; ++i)
          for (std::int64_t x = 0; x < d; ++x)
            buf[((b * n + i) * h + hh) * d + x] = t.view().at(b, hh, i, x);
    return buf;
  };
  const std::vector<float> qb = to_bnhd(q), kb = to_bnhd(k), vb = to_bnhd(v);
  const auto bnhd = spattn::attention(spattn::view_bnhd(qb.data(), B, n, H, d),
                                      spattn::view_bnhd(kb.data(), B, n, Hkv, d),
                                      spattn::view_bnhd(vb.data(), B, n, Hkv, d), L);
  CHECK(bitwise_equal(bnhd.o, base.o));
  CHECK(bitwise_equal(bnhd.lse, base.lse));

  // Padded rows (token stride d + 5) and every other element (element stride 2, which the
  // executor packs), into a padded, transposed-order output.
  auto padded = [&](const Tensor& t, std::int64_t elem_stride) {
    const std::int64_t h = t.shape[1], row = d * elem_stride + 5;
    std::vector<float> buf(static_cast<std::size_t>(B * h * n * row), -7.0f);
    spattn::BasicTensorView<float> view{
        buf.data(), {B, h, n, d}, {h * n * row, n * row, row, elem_stride}};
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t hh = 0; hh < h; ++hh)
        for (std::int64_t i = 0; i < n; ++i)
          for (std::int64_t x = 0; x < d; ++x) view.at(b, hh, i, x) = t.view().at(b, hh, i, x);
    return std::pair{std::move(buf), view};
  };
  for (std::int64_t es : {1, 2}) {
    INFO("element stride " << es);
    auto [qbuf, qv] = padded(q, es);
    auto [kbuf, kv] = padded(k, es);
    auto [vbuf, vv] = padded(v, es);
    // o as [B, N, H, d] with a gap after each token; lse with stride 3.
    std::vector<float> obuf(static_cast<std::size_t>(B * n * (H * d + 3)));
    std::vector<float> lbuf(static_cast<std::size_t>(B * H * n * 3));
    spattn::TensorView ov{obuf.data(), {B, H, n, d}, {n * (H * d + 3), d, H * d + 3, 1}};
    spattn::TensorView lv{lbuf.data(), {B, H, n, 1}, {H * n * 3, n * 3, 3, 1}};
    spattn::attention(qv, kv, vv, L, ov, lv);
    bool same = true;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t i = 0; i < n; ++i) {
          const float l0 = base.lse.view().at(b, h, i, 0), l1 = lv.at(b, h, i, 0);
          same = same && std::memcmp(&l0, &l1, sizeof l0) == 0;
          for (std::int64_t x = 0; x < d; ++x) {
            const float a = base.o.view().at(b, h, i, x), c = ov.at(b, h, i, x);
            same = same && std::memcmp(&a, &c, sizeof a) == 0;
          }
        }
    CHECK(same);
  }
}

TEST_CASE("flash executor: bitwise identical results for 1, 2, 4 and 8 threads", "[flash]") {
  struct Variant {
    const char* spec;
    std::int64_t n;
    int bq, bk;
    std::int64_t split_tiles;
    std::int64_t want_split;  // split rows expected (batch x head groups x rows), -1: some
  };
  const Variant variants[] = {
      // 16 x 16 tiles at N = 2560: the two query blocks holding the global tokens keep all 160
      // key tiles, the others about 5 (3 window tiles + 2 global columns), so the automatic
      // rule (parts of max(64, 4 x average) tiles, split above two parts) splits exactly those
      // 2 rows, in each of the 2 head groups (Hq = 4 heads sharing one layout over Hkv = 2).
      {"window(16) | global(20)", 2560, 16, 16, 0, 2 * 2},
      // An explicit part size splits the global rows of a mixed pattern.
      {"sliding(100) | global(5) | random(2, seed=3)", 1000, 32, 16, 8, -1},
      // Causal rows are never split automatically (at most twice the average).
      {"causal", 1000, 64, 64, 0, 0},
  };
  for (const Variant& var : variants) {
    INFO(var.spec);
    const std::int64_t n = var.n, d = 32;
    const Tensor q = random_tensor(1, 4, n, d, 15);
    const Tensor k = random_tensor(1, 2, n, d, 16);
    const Tensor v = random_tensor(1, 2, n, d, 17);
    const Layout L = make_layout(var.spec, n, n, 1, var.bq, var.bk);
    std::vector<spattn::AttentionResult> results;
    for (int threads : {1, 2, 4, 8}) {
      AttentionOptions opt;
      opt.threads = threads;
      opt.split_tiles = var.split_tiles;
      results.push_back(spattn::attention(q.view(), k.view(), v.view(), L, opt));
    }
    if (var.want_split >= 0)
      CHECK(results[0].stats.split_rows == var.want_split);
    else
      CHECK(results[0].stats.split_rows > 0);
    for (std::size_t t = 1; t < results.size(); ++t) {
      CHECK(bitwise_equal(results[t].o, results[0].o));
      CHECK(bitwise_equal(results[t].lse, results[0].lse));
      CHECK(results[t].stats.split_rows == results[0].stats.split_rows);
    }
    // Correct as well, on the split rows and a sample of the others.
    const std::vector<std::int64_t> rows = {0, 5, 17, 19, 20, 31, 63, 64, 100, 517, n - 1};
    const Reference ref = reference(q.view(), k.view(), v.view(), L, 1.0 / std::sqrt(32.0), rows);
    const Errors e = compare(results[0].o, results[0].lse, ref, rows);
    CHECK(e.finite);
    CHECK(e.o <= 1e-5);
    CHECK(e.lse <= 1e-5);
  }
}

TEST_CASE("flash executor: workspace does not grow with N", "[flash]") {
  // sliding(1024), one head, 64 x 64 tiles, one thread, d = 1 (the bound holds for any d; d = 1
  // keeps the 2^18-token run short): one workspace and nothing else, since no row is split (17
  // tiles per row against parts of max(64, 4 x 17) = 68). Its size must be the same at N =
  // 16,384 and N = 262,144, and within the sum of its buffers derived below.
  const std::int64_t d = 1;
  auto bytes_at = [&](std::int64_t n) {
    const Layout L = make_layout("sliding(1024)", n, n, 1, 64, 64);
    const Tensor q = random_tensor(1, 1, n, d, 18);
    const Tensor k = random_tensor(1, 1, n, d, 19);
    const Tensor v = random_tensor(1, 1, n, d, 20);
    AttentionOptions opt;
    opt.threads = 1;
    const auto res = spattn::attention(q.view(), k.view(), v.view(), L, opt);
    CHECK(res.stats.split_rows == 0);
    return res.stats.workspace_bytes;
  };
  const std::int64_t small = bytes_at(16384), large = bytes_at(262144);
  // Float buffers: Q^T and O^T (d x 64 each) and m and l (64 each) for the 4 rows of a
  // key-loop-blocked row item, S^T (64 x 64), 2 x scratch (64 each);
  // lane masks: 2 x (64 keys x 4 vectors) uint16; the gather panel: K and V rows of 64 keys
  // (d floats each) and their lane bits (64 x 4 uint16); the diagonal path's scratch: 64 x 16
  // floats, 64 int64 keys, 64 uint16 lane masks; the residue tracks' Q^T and O^T of an item's
  // 16 vectors (d x 16 floats each), their max and sum (16 x 16 floats each) and one block's
  // probabilities (4 x 16 x 16 floats). All are multiples of 64 bytes already.
  const std::int64_t bound = 4 * (4 * (2 * d * 64 + 2 * 64) + 64 * 64 + 2 * 64) + 2 * 2 * 64 * 4 +
                             4 * 2 * 64 * d + 2 * 64 * 4 + 4 * 64 * 16 + 8 * 64 + 2 * 64 +
                             4 * (2 * 16 * d * 16 + 2 * 256 + 4 * 16 * 16);
  CHECK(small == large);
  CHECK(large <= bound);
  CHECK(large > 0);
}

TEST_CASE("flash executor: shape errors throw UsageError naming the values", "[flash]") {
  const Tensor q = random_tensor(1, 4, 64, 16, 21);
  const Tensor k = random_tensor(1, 2, 64, 16, 22);
  const Layout L = make_layout("causal", 64, 64, 1, 16, 16);
  // The UsageError's message, or a marker when none (or another exception) was thrown.
  auto message = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const spattn::UsageError& e) {
      return e.what();
    } catch (...) {
      return "(another exception)";
    }
    return "(no exception)";
  };
  using Catch::Matchers::Contains;
  const Layout L60 = make_layout("causal", 60, 64, 1, 16, 16);
  CHECK_THAT(message([&] { spattn::attention(q.view(), k.view(), k.view(), L60); }),
             Contains("nq = 60"));
  const Layout L3 = make_layout("causal", 64, 64, 3, 16, 16);
  CHECK_THAT(message([&] { spattn::attention(q.view(), k.view(), k.view(), L3); }),
             Contains("3 heads"));
  const Tensor k3 = random_tensor(1, 3, 64, 16, 23);
  CHECK_THAT(message([&] { spattn::attention(q.view(), k3.view(), k3.view(), L); }),
             Contains("multiple"));
  const Tensor q0 = random_tensor(1, 4, 64, 0, 24), k0 = random_tensor(1, 2, 64, 0, 25);
  CHECK_THAT(message([&] { spattn::attention(q0.view(), k0.view(), k0.view(), L); }),
             Contains("head dim is 0"));
  const Tensor q300 = random_tensor(1, 4, 64, 300, 26), k300 = random_tensor(1, 2, 64, 300, 27);
  CHECK_THAT(message([&] { spattn::attention(q300.view(), k300.view(), k300.view(), L); }),
             Contains("head dim is 300"));
  Tensor o(1, 4, 64, 8), lse(1, 4, 64, 1);
  CHECK_THAT(
      message([&] { spattn::attention(q.view(), k.view(), k.view(), L, o.view(), lse.view()); }),
      Contains("o has shape"));
}
