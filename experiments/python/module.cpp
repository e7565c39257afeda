// spattn._core: the pybind11 layer under the `spattn` Python package. Conversion only: NumPy
// arrays in and out as strided float32 views (no copy), C++ errors as Python exceptions
// (UsageError -> ValueError, BudgetError and std::bad_alloc -> MemoryError) with their
// messages, the GIL released while attention runs. Everything else is the C++ API.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "spattn/attention/attention.hpp"
#include "spattn/attention/backward.hpp"
#include "spattn/attention/reference_backward.hpp"
#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/select/select.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"

namespace py = pybind11;
using spattn::UsageError;

namespace {

// A built layout and the CLI's stats record of it.
struct PyLayout {
  spattn::Layout layout;
  std::string record;  // Measurement JSON (spattn stats --json)
  std::string spec;    // as given
};

std::shared_ptr<PyLayout> make_layout(const std::string& spec, std::int64_t n,
                                      std::optional<std::int64_t> nk, int heads, int block,
                                      std::optional<int> block_k, int threads) {
  namespace ex = spattn::experiments;
  ex::SweepPoint p;
  p.pattern.spec = spec;
  p.pattern.name = spec;
  p.n = n;
  p.nk = nk.value_or(0);
  p.head_dim = 64;
  p.heads = p.kv_heads = heads;
  p.threads = threads;
  p.block = block;
  p.block_k = block_k.value_or(0);
  p.key = ex::point_key(p);
  py::gil_scoped_release unlock;
  ex::PreparedPoint u = ex::prepare_point(p);
  ex::Measurement m = ex::point_record(u.point);
  m.source = "stats";
  m.layout = u.figures;
  m.predicted = u.prediction;
  auto out = std::make_shared<PyLayout>();
  out->record = ex::to_json(m).dump();
  out->spec = spec;
  out->layout = std::move(u.layout);
  return out;
}

const char* kAxisNames[4] = {"batch", "heads", "tokens", "head dim"};

// A float32 NumPy array of rank 2..4 ([N, d], [H, N, d], [B, H, N, d]) as a [B, H, N, d] view,
// without a copy. Refuses other dtypes, ranks and strides that are not whole elements.
template <class T>
spattn::BasicTensorView<T> as_view(const py::array& a, const char* what, const char* dtype_name) {
  if (!py::isinstance<py::array_t<std::remove_const_t<T>>>(a) ||
      !a.dtype().is(py::dtype::of<std::remove_const_t<T>>()))
    throw UsageError(
        fmt::format("{} has dtype {}: spattn takes {} (convert with .astype(numpy.{}) or pass "
                    "convert=True)",
                    what, std::string(py::str(a.dtype())), dtype_name, dtype_name));
  const auto rank = a.ndim();
  if (rank < 2 || rank > 4)
    throw UsageError(
        fmt::format("{} has rank {}: it must be [B, H, N, d], [H, N, d] or [N, d]", what, rank));
  spattn::BasicTensorView<T> v;
  v.shape = {1, 1, 1, 1};
  v.stride = {0, 0, 0, 0};
  const auto off = 4 - rank;
  for (py::ssize_t i = 0; i < rank; ++i) {
    const py::ssize_t bytes = a.strides(i);
    if (bytes < 0 || bytes % static_cast<py::ssize_t>(sizeof(T)) != 0)
      throw UsageError(fmt::format(
          "{} has stride {} bytes in axis {} ({}): strides must be non-negative multiples of "
          "{} bytes",
          what, bytes, i, kAxisNames[off + i], sizeof(T)));
    v.shape[off + i] = a.shape(i);
    v.stride[off + i] = bytes / static_cast<py::ssize_t>(sizeof(T));
  }
  v.data = static_cast<T*>(const_cast<void*>(a.data()));
  return v;
}

spattn::ConstTensorView in_view(const py::array& a, const char* what, bool check_finite = true) {
  const auto v = as_view<const float>(a, what, "float32");
  if (check_finite) spattn::experiments::check_finite(v, what, static_cast<int>(a.ndim()));
  return v;
}

py::array_t<float> new_array(const std::array<std::int64_t, 4>& shape, int rank) {
  std::vector<py::ssize_t> dims(shape.end() - rank, shape.end());
  return py::array_t<float>(dims);
}

spattn::TensorView out_view(py::array_t<float>& a, const std::array<std::int64_t, 4>& shape) {
  return spattn::view_bhnd(a.mutable_data(), shape[0], shape[1], shape[2], shape[3]);
}

int rank_of(const py::array& q) {
  return static_cast<int>(q.ndim());
}

// Score modifications (score_mod.hpp): ALiBi slopes and sink logits per query head (empty:
// none) and the soft-capping constant, checked against the query heads.
spattn::ScoreMod score_mod(std::vector<float> alibi_slopes, std::optional<float> softcap,
                           std::vector<float> sinks, std::int64_t q_heads) {
  spattn::ScoreMod mod;
  mod.alibi_slopes = std::move(alibi_slopes);
  mod.softcap = softcap;
  mod.sinks = std::move(sinks);
  spattn::check_score_mod(mod, q_heads);
  return mod;
}

py::tuple attention(
    const py::array& q, const py::array& k, const py::array& v, const PyLayout& layout,
    std::optional<float> scale, int threads, std::vector<float> alibi_slopes,
    std::optional<float> softcap, std::vector<float> sinks,
    std::optional<py::array_t<float, py::array::c_style | py::array::forcecast>> bias,
    const std::string& kv_dtype) {
  const auto qv = in_view(q, "q"), kv = in_view(k, "k"), vv = in_view(v, "v");
  spattn::check_attention_inputs(qv, kv, vv, layout.layout);
  const spattn::KVDtype dtype = spattn::parse_kv_dtype(kv_dtype, "kv_dtype");
  if (scale && !(std::isfinite(*scale) && *scale > 0))
    throw UsageError(fmt::format("scale = {}: it must be a finite number > 0", *scale));
  const int rank = rank_of(q);
  // o: q's shape with v's head dim d_v.
  const std::array<std::int64_t, 4> o_shape = {qv.shape[0], qv.shape[1], qv.shape[2], vv.shape[3]};
  auto o = new_array(o_shape, rank);
  // lse: q's shape without the head dim ([B, H, N], [H, N] or [N]).
  const std::array<std::int64_t, 4> lse_shape = {1, qv.shape[0], qv.shape[1], qv.shape[2]};
  auto lse = new_array(lse_shape, rank - 1);
  spattn::AttentionOptions opt;
  opt.scale = scale;
  opt.threads = threads;
  opt.mod = score_mod(std::move(alibi_slopes), softcap, std::move(sinks), qv.shape[1]);
  if (bias) {
    spattn::Geometry g = layout.layout.geometry;
    g.heads = static_cast<int>(qv.shape[1]);
    const std::vector<std::int64_t> shape(bias->shape(), bias->shape() + bias->ndim());
    opt.mod.bias = spattn::experiments::score_bias_for(
        std::vector<float>(bias->data(), bias->data() + bias->size()), shape, g, "bias");
  }
  const auto ov = out_view(o, o_shape);
  const auto lv =
      spattn::view_bhnd(lse.mutable_data(), qv.shape[0], qv.shape[1], qv.shape[2], std::int64_t{1});
  {
    py::gil_scoped_release unlock;
    if (dtype == spattn::KVDtype::F32) {
      spattn::attention(qv, kv, vv, layout.layout, ov, lv, opt);
    } else {  // K and V rounded into the narrow type, then read by the executor as stored
      const spattn::KVTensor kn = spattn::quantize_kv(kv, dtype),
                             vn = spattn::quantize_kv(vv, dtype);
      spattn::attention(qv, kn.view(), vn.view(), layout.layout, ov, lv, opt);
    }
    spattn::experiments::check_output_finite(ov, lv);
  }
  return py::make_tuple(o, lse);
}

py::tuple backward(const py::array& q, const py::array& k, const py::array& v, const py::array& o,
                   const py::array& lse, const py::array& d_o, const PyLayout& layout,
                   std::optional<float> scale, int threads, std::vector<float> alibi_slopes,
                   std::optional<float> softcap, std::vector<float> sinks) {
  const auto qv = in_view(q, "q"), kv = in_view(k, "k"), vv = in_view(v, "v");
  const auto ov = in_view(o, "o"), dov = in_view(d_o, "dO");
  // lse: [B, H, N] (rank of q minus one), -inf allowed (fully masked rows).
  auto lv = as_view<const float>(lse, "lse", "float32");
  if (lse.ndim() != q.ndim() - 1)
    throw UsageError(fmt::format("lse has rank {}: it must be q's rank minus one ({})", lse.ndim(),
                                 q.ndim() - 1));
  lv.shape = {lv.shape[1], lv.shape[2], lv.shape[3], 1};
  lv.stride = {lv.stride[1], lv.stride[2], lv.stride[3], 1};
  const int rank = rank_of(q);
  auto dq = new_array(qv.shape, rank), dk = new_array(kv.shape, rank),
       dv = new_array(vv.shape, rank);
  spattn::BackwardOptions opt;
  opt.scale = scale;
  opt.threads = threads;
  opt.mod = score_mod(std::move(alibi_slopes), softcap, std::move(sinks), qv.shape[1]);
  const auto dqv = out_view(dq, qv.shape), dkv = out_view(dk, kv.shape),
             dvv = out_view(dv, vv.shape);
  py::array_t<float> d_sinks(static_cast<py::ssize_t>(opt.mod.sinks.size()));
  const std::span<float> dsv(d_sinks.mutable_data(), opt.mod.sinks.size());
  {
    py::gil_scoped_release unlock;
    spattn::attention_backward(qv, kv, vv, ov, lv, dov, layout.layout, dqv, dkv, dvv, opt, dsv);
  }
  if (opt.mod.sinks.empty()) return py::make_tuple(dq, dk, dv);
  return py::make_tuple(dq, dk, dv, d_sinks);
}

// The double reference: forward (o, lse) and, with d_o, the gradients (dq, dk, dv).
py::tuple reference(const py::array& q, const py::array& k, const py::array& v,
                    const std::optional<py::array>& d_o, const PyLayout& layout,
                    std::optional<double> scale, std::vector<float> alibi_slopes,
                    std::optional<float> softcap, std::vector<float> sinks) {
  const auto qv = as_view<const double>(q, "q", "float64");
  const auto kv = as_view<const double>(k, "k", "float64");
  const auto vv = as_view<const double>(v, "v", "float64");
  spattn::ConstTensorViewD dov{};
  if (d_o) dov = as_view<const double>(*d_o, "dO", "float64");
  spattn::ReferenceOptions opt;
  opt.scale = scale;
  opt.mod = score_mod(std::move(alibi_slopes), softcap, std::move(sinks), qv.shape[1]);
  spattn::ReferenceGradients r;
  {
    py::gil_scoped_release unlock;
    r = spattn::reference_attention_backward(qv, kv, vv, dov, layout.layout, opt);
  }
  const int rank = rank_of(q);
  auto arr = [rank](const std::vector<double>& x, std::array<std::int64_t, 4> shape, int r) {
    std::vector<py::ssize_t> dims(shape.begin() + (4 - r), shape.begin() + 4);
    py::array_t<double> a(dims);
    std::copy(x.begin(), x.end(), a.mutable_data());
    (void)rank;
    return a;
  };
  const auto qs = r.q_shape, ks = r.kv_shape;
  std::array<std::int64_t, 4> ls = {1, qs[0], qs[1], qs[2]};
  auto o = arr(r.o, qs, rank), lse = arr(r.lse, ls, rank - 1);
  if (!d_o) return py::make_tuple(o, lse);
  if (opt.mod.sinks.empty())
    return py::make_tuple(o, lse, arr(r.dq, qs, rank), arr(r.dk, ks, rank), arr(r.dv, ks, rank));
  py::array_t<double> d_sinks(static_cast<py::ssize_t>(r.d_sinks.size()));
  std::copy(r.d_sinks.begin(), r.d_sinks.end(), d_sinks.mutable_data());
  return py::make_tuple(o, lse, arr(r.dq, qs, rank), arr(r.dk, ks, rank), arr(r.dv, ks, rank),
                        d_sinks);
}

// Resolves the selectors of `spec` on q [B, Hq, nq, d] and k [B, Hkv, nk, d] (float32): one
// Layout per batch (a spec without selectors gives one layout, for every batch). The record
// holds the spec, the selection's wall time and its scoring FLOPs.
py::list select_layouts(const std::string& spec, const py::array& q, const py::array& k, int block,
                        int threads) {
  const auto qv = in_view(q, "q"), kv = in_view(k, "k");
  spattn::Geometry g;
  g.nq = qv.shape[2];
  g.nk = kv.shape[2];
  g.heads = static_cast<int>(qv.shape[1]);
  g.block_q = g.block_k = block;
  const spattn::PatternPtr pattern = spattn::parse_spec(spec);
  spattn::BuildOptions bo;
  bo.threads = threads;
  spattn::SelectedLayouts sel;
  {
    py::gil_scoped_release unlock;
    sel = spattn::select_layouts(pattern, qv, kv, g, bo);
  }
  py::list out;
  for (spattn::Layout& L : sel.layouts) {
    auto p = std::make_shared<PyLayout>();
    p->record = fmt::format(R"({{"selected": true, "select_seconds": {}, "select_flops": {}}})",
                            sel.seconds, sel.cost.flops);
    p->spec = spec;
    p->layout = std::move(L);
    out.append(p);
  }
  return out;
}

py::array_t<std::uint8_t> block_mask(const PyLayout& p) {
  const spattn::Layout& L = p.layout;
  const auto& g = L.geometry;
  py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(g.heads),
                                 static_cast<py::ssize_t>(g.q_blocks()),
                                 static_cast<py::ssize_t>(g.k_blocks())});
  std::uint8_t* m = out.mutable_data();
  std::fill(m, m + out.size(), 0);
  for (int h = 0; h < g.heads; ++h) {
    const auto& bl = L.head(h);
    for (std::int64_t r = 0; r < bl.q_blocks(); ++r)
      for (std::int64_t t = bl.row_ptr()[r]; t < bl.row_ptr()[r + 1]; ++t)
        m[(h * g.q_blocks() + r) * g.k_blocks() + bl.col_index()[t]] = 1;
  }
  return out;
}

py::array_t<std::uint8_t> dense_mask(const PyLayout& p, std::int64_t max_elements) {
  const spattn::Layout& L = p.layout;
  const auto& g = L.geometry;
  const double elements =
      static_cast<double>(g.heads) * static_cast<double>(g.nq) * static_cast<double>(g.nk);
  if (elements > static_cast<double>(max_elements))
    throw UsageError(fmt::format(
        "dense_mask: heads x nq x nk = {} x {} x {} = {:.0f} elements exceeds max_elements = {} "
        "(raise it, or use block_mask() or to_flex())",
        g.heads, g.nq, g.nk, elements, max_elements));
  py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(g.heads), static_cast<py::ssize_t>(g.nq),
                                 static_cast<py::ssize_t>(g.nk)});
  std::uint8_t* m = out.mutable_data();
  std::fill(m, m + out.size(), 0);
  for (int h = 0; h < g.heads; ++h) {
    const auto& bl = L.head(h);
    for (std::int64_t r = 0; r < bl.q_blocks(); ++r)
      for (std::int64_t t = bl.row_ptr()[r]; t < bl.row_ptr()[r + 1]; ++t) {
        const spattn::Tile tile = bl.tile(r, bl.col_index()[t]);
        const std::int32_t mi = bl.mask_index()[t];
        for (std::int64_t i = tile.q_begin; i < tile.q_end; ++i)
          for (std::int64_t j = tile.k_begin; j < tile.k_end; ++j) {
            bool keep = true;
            if (mi >= 0) {
              const std::int64_t a = i - tile.q_begin, c = j - tile.k_begin;
              keep = (bl.mask(mi)[a * bl.mask_row_words() + (c >> 6)] >> (c & 63)) & 1u;
            }
            m[(h * g.nq + i) * g.nk + j] = keep ? 1 : 0;
          }
      }
  }
  return out;
}

// FlexAttention BlockMask arrays (see the package's to_flex docstring). Full tiles go to full_*,
// Partial ones to the plain (mask_mod) arrays; q_* are the same by key block.
py::dict to_flex(const PyLayout& p) {
  const spattn::Layout& L = p.layout;
  const auto& g = L.geometry;
  const py::ssize_t H = g.heads, QB = g.q_blocks(), KB = g.k_blocks();
  auto make = [](std::vector<py::ssize_t> dims) {
    py::array_t<std::int32_t> a(dims);
    std::fill(a.mutable_data(), a.mutable_data() + a.size(), 0);
    return a;
  };
  auto kv_num = make({1, H, QB}), kv_idx = make({1, H, QB, KB});
  auto fkv_num = make({1, H, QB}), fkv_idx = make({1, H, QB, KB});
  auto q_num = make({1, H, KB}), q_idx = make({1, H, KB, QB});
  auto fq_num = make({1, H, KB}), fq_idx = make({1, H, KB, QB});
  std::int32_t *kn = kv_num.mutable_data(), *ki = kv_idx.mutable_data(),
               *fkn = fkv_num.mutable_data(), *fki = fkv_idx.mutable_data(),
               *qn = q_num.mutable_data(), *qi = q_idx.mutable_data(), *fqn = fq_num.mutable_data(),
               *fqi = fq_idx.mutable_data();
  for (py::ssize_t h = 0; h < H; ++h) {
    const auto& bl = L.head(static_cast<int>(h));
    for (py::ssize_t r = 0; r < QB; ++r)
      for (std::int64_t t = bl.row_ptr()[r]; t < bl.row_ptr()[r + 1]; ++t) {
        const std::int32_t c = bl.col_index()[t];
        const bool full = bl.mask_index()[t] < 0;
        std::int32_t* num = full ? fkn : kn;
        std::int32_t* idx = full ? fki : ki;
        idx[(h * QB + r) * KB + num[h * QB + r]++] = c;
        std::int32_t* tnum = full ? fqn : qn;
        std::int32_t* tidx = full ? fqi : qi;
        tidx[(h * KB + c) * QB + tnum[h * KB + c]++] = static_cast<std::int32_t>(r);
      }
  }
  py::dict d;
  d["kv_num_blocks"] = kv_num;
  d["kv_indices"] = kv_idx;
  d["full_kv_num_blocks"] = fkv_num;
  d["full_kv_indices"] = fkv_idx;
  d["q_num_blocks"] = q_num;
  d["q_indices"] = q_idx;
  d["full_q_num_blocks"] = fq_num;
  d["full_q_indices"] = fq_idx;
  d["BLOCK_SIZE"] = py::make_tuple(g.block_q, g.block_k);
  return d;
}

// A FlexAttention mask_mod as a pattern. Its pairs on (geometry, head) are found once by calling
// the Python function on one query tile row at a time (64 queries x every key, NumPy
// broadcasting) and kept as a bitmap that allows() reads: a scan, quadratic in time and in bits
// (nq x nk / 8 bytes per head), which the layout reports as scanned. The Python functions live
// in a never-freed table so that no Python object is released without the GIL.
struct MaskModTable {
  std::mutex lock;
  std::vector<py::object*> fns;
  std::vector<std::int64_t> batch;
};
MaskModTable& mask_mods() {
  static auto* t = new MaskModTable;  // never freed (see above)
  return *t;
}

class MaskModPattern final : public spattn::Pattern {
 public:
  MaskModPattern(std::string name, std::size_t index) : name_(std::move(name)), index_(index) {}
  bool allows(const spattn::Geometry& g, int head, std::int64_t i, std::int64_t j) const override {
    const std::vector<std::uint64_t>& bits = bitmap(g, head);
    const std::uint64_t at = static_cast<std::uint64_t>(i) * static_cast<std::uint64_t>(g.nk) +
                             static_cast<std::uint64_t>(j);
    return (bits[at >> 6] >> (at & 63)) & 1u;
  }
  std::string spec() const override { return name_; }
  bool depends_on_head() const override { return true; }

 private:
  const std::vector<std::uint64_t>& bitmap(const spattn::Geometry& g, int head) const {
    std::lock_guard<std::mutex> guard(lock_);
    const auto key = std::make_tuple(g.nq, g.nk, head);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    std::vector<std::uint64_t> bits((static_cast<std::size_t>(g.nq * g.nk) + 63) / 64, 0);
    {
      py::gil_scoped_acquire gil;
      const py::object& fn = *mask_mods().fns[index_];
      auto np = py::module_::import("numpy");
      const py::object b = py::int_(mask_mods().batch[index_]);
      const py::object h = py::int_(head);
      const py::object kv = np.attr("arange")(g.nk).attr("reshape")(1, g.nk);
      const std::int64_t rows = 64;
      for (std::int64_t q0 = 0; q0 < g.nq; q0 += rows) {
        const std::int64_t q1 = std::min(g.nq, q0 + rows);
        const py::object qi = np.attr("arange")(q0, q1).attr("reshape")(q1 - q0, 1);
        py::object res = fn(b, h, qi, kv);
        const auto m = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(np.attr(
            "broadcast_to")(np.attr("asarray")(res, "bool"), py::make_tuple(q1 - q0, g.nk)));
        if (!m)
          throw UsageError(
              fmt::format("{}: fn(b, h, q_idx, kv_idx) did not give a boolean "
                          "array broadcastable to [{}, {}]",
                          name_, q1 - q0, g.nk));
        const bool* mb = m.data();
        for (std::int64_t a = 0; a < q1 - q0; ++a)
          for (std::int64_t j = 0; j < g.nk; ++j)
            if (mb[a * g.nk + j]) {
              const std::uint64_t at =
                  static_cast<std::uint64_t>(q0 + a) * static_cast<std::uint64_t>(g.nk) +
                  static_cast<std::uint64_t>(j);
              bits[at >> 6] |= std::uint64_t{1} << (at & 63);
            }
      }
    }
    return cache_.emplace(key, std::move(bits)).first->second;
  }

  std::string name_;
  std::size_t index_;
  mutable std::mutex lock_;
  mutable std::map<std::tuple<std::int64_t, std::int64_t, int>, std::vector<std::uint64_t>> cache_;
};

std::string register_mask_mod(py::object fn, std::optional<std::string> name, std::int64_t batch) {
  if (!PyCallable_Check(fn.ptr()))
    throw UsageError("from_mask_mod: fn must be callable as fn(b, h, q_idx, kv_idx)");
  MaskModTable& t = mask_mods();
  std::lock_guard<std::mutex> guard(t.lock);
  const std::size_t index = t.fns.size();
  const std::string n = name.value_or(fmt::format("mask_mod_{}", index));
  spattn::PatternInfo info;
  info.name = n;
  info.summary = "a FlexAttention mask_mod registered from Python (spattn.from_mask_mod)";
  info.rule = "fn(b, h, q_idx = i, kv_idx = j) is true (evaluated tile row by tile row: a scan)";
  info.convention = "PyTorch FlexAttention mask_mod";
  info.example = n;
  info.make = [n, index](const spattn::Args&) {
    return std::make_shared<MaskModPattern>(n, index);
  };
  spattn::Registry::global().add(std::move(info), "python");
  t.fns.push_back(new py::object(std::move(fn)));  // never freed (see MaskModTable)
  t.batch.push_back(batch);
  return n;
}

py::list patterns() {
  py::list out;
  for (const spattn::PatternInfo* info : spattn::Registry::global().all()) {
    py::list params;
    for (const spattn::ParamSpec& ps : info->params) {
      py::dict d;
      d["name"] = ps.name;
      d["type"] = spattn::type_name(ps.type);
      d["doc"] = ps.doc;
      params.append(d);
    }
    py::dict d;
    d["name"] = info->name;
    d["summary"] = info->summary;
    d["rule"] = info->rule;
    d["convention"] = info->convention;
    d["example"] = info->example;
    d["params"] = params;
    out.append(d);
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "spattn's C++ core (use the spattn package, not this module)";
  py::register_exception<spattn::UsageError>(m, "UsageError", PyExc_ValueError);
  py::register_exception<spattn::BudgetError>(m, "BudgetError", PyExc_MemoryError);

  py::class_<PyLayout, std::shared_ptr<PyLayout>>(m, "Layout")
      .def_readonly("spec", &PyLayout::spec)
      .def_property_readonly("canonical_spec", [](const PyLayout& p) { return p.layout.spec; })
      .def_readonly("record", &PyLayout::record)
      .def_property_readonly("nq", [](const PyLayout& p) { return p.layout.geometry.nq; })
      .def_property_readonly("nk", [](const PyLayout& p) { return p.layout.geometry.nk; })
      .def_property_readonly("heads", [](const PyLayout& p) { return p.layout.geometry.heads; })
      .def_property_readonly("block_q", [](const PyLayout& p) { return p.layout.geometry.block_q; })
      .def_property_readonly("block_k", [](const PyLayout& p) { return p.layout.geometry.block_k; })
      .def("block_mask", &block_mask)
      .def("dense_mask", &dense_mask, py::arg("max_elements"))
      .def("to_flex", &to_flex);
  m.def("layout", &make_layout, py::arg("spec"), py::arg("n"), py::arg("nk"), py::arg("heads"),
        py::arg("block"), py::arg("block_k"), py::arg("threads"));
  m.def("attention", &attention);
  m.def("select", &select_layouts);
  m.def("alibi_slopes", [](std::int64_t heads) { return spattn::alibi_slopes(heads); });
  m.def("backward", &backward);
  m.def("reference", &reference);
  m.def("patterns", &patterns);
  m.def("register_mask_mod", &register_mask_mod);
}
