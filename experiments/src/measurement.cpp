// The measurement record: serializer, parser (schema 2 and the untyped records of schema 1) and
// derived figures (see measurement.hpp; fields in experiments/README.md).
#include "spattn/experiments/measurement.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "spattn/attention/execution_path.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::experiments {
namespace {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <class T>
ojson opt(const std::optional<T>& v) {
  return v ? ojson(*v) : ojson(nullptr);
}

// A number, or null when it is not finite (JSON has no NaN or infinity).
ojson num(double v) {
  return std::isfinite(v) ? ojson(v) : ojson(nullptr);
}

std::string shown(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// Reads the fields of one JSON object; every error names `where`, the field path and what it
// must be.
class Reader {
 public:
  Reader(const json& j, std::string where, std::string path)
      : j_(j), where_(std::move(where)), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what,
                         const json* found) const {
    throw UsageError(fmt::format("{}: {} must be {}, found {}", where_, full(field), what,
                                 found == nullptr ? std::string("nothing") : shown(*found)));
  }
  std::string full(const std::string& field) const {
    return path_.empty() ? field : path_ + "." + field;
  }
  const json* find(const std::string& field) const {
    const auto it = j_.find(field);
    return it == j_.end() ? nullptr : &*it;
  }
  bool present(const std::string& field) const {
    const json* v = find(field);
    return v != nullptr && !v->is_null();
  }
  const json& need(const std::string& field, const std::string& what) const {
    const json* v = find(field);
    if (v == nullptr) fail(field, what, nullptr);
    return *v;
  }

  std::int64_t int64(const std::string& field, std::int64_t min = 0,
                     std::int64_t max = std::numeric_limits<std::int64_t>::max()) const {
    const std::string what = max == std::numeric_limits<std::int64_t>::max()
                                 ? fmt::format("an integer >= {}", min)
                                 : fmt::format("an integer in {}..{}", min, max);
    const json& v = need(field, what);
    if (v.is_number_unsigned()) {
      if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) fail(field, what, &v);
      return static_cast<std::int64_t>(v.get<std::uint64_t>());
    }
    if (!v.is_number_integer() || v.get<std::int64_t>() < min || v.get<std::int64_t>() > max)
      fail(field, what, &v);
    return v.get<std::int64_t>();
  }
  int integer(const std::string& field, int min = 0) const {
    return static_cast<int>(int64(field, min, std::numeric_limits<int>::max()));
  }
  std::uint64_t uint64(const std::string& field) const {
    const json& v = need(field, "an integer >= 0");
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
      fail(field, "an integer >= 0", &v);
    return v.get<std::uint64_t>();
  }
  // A number >= 0; with `null_is_nan`, null reads as NaN (a figure that was not finite).
  double number(const std::string& field, bool null_is_nan = false) const {
    const char* what = null_is_nan ? "a number >= 0 or null" : "a number >= 0";
    const json& v = need(field, what);
    if (null_is_nan && v.is_null()) return kNaN;
    if (!v.is_number() || !(v.get<double>() >= 0)) fail(field, what, &v);
    return v.get<double>();
  }
  std::string string(const std::string& field) const {
    const json& v = need(field, "a string");
    if (!v.is_string()) fail(field, "a string", &v);
    return v.get<std::string>();
  }
  bool boolean(const std::string& field) const {
    const json& v = need(field, "true or false");
    if (!v.is_boolean()) fail(field, "true or false", &v);
    return v.get<bool>();
  }
  // The object `field` (nullopt when null); `required` refuses a missing field.
  std::optional<Reader> object(const std::string& field, bool required = true) const {
    const json* v = find(field);
    if (v == nullptr && !required) return std::nullopt;
    if (v == nullptr || !(v->is_object() || v->is_null())) fail(field, "an object or null", v);
    if (v->is_null()) return std::nullopt;
    return Reader(*v, where_, full(field));
  }
  // The object `field`, which must be present and not null.
  Reader required_object(const std::string& field) const {
    const json* v = find(field);
    if (v == nullptr || !v->is_object()) fail(field, "an object", v);
    return Reader(*v, where_, full(field));
  }
  // Optional leaf: absent or null -> nullopt.
  std::optional<std::int64_t> opt_int64(const std::string& field) const {
    if (!present(field)) return std::nullopt;
    return int64(field);
  }
  std::optional<double> opt_number(const std::string& field) const {
    if (!present(field)) return std::nullopt;
    return number(field);
  }
  const std::string& where() const { return where_; }

 private:
  const json& j_;
  std::string where_;
  std::string path_;
};

Status status_at(const Reader& r, const std::string& field) {
  const std::string name = r.string(field);
  const auto s = parse_status(name);
  if (!s) r.fail(field, "one of ok, skipped, timeout, crashed, oom, error", r.find(field));
  return *s;
}

std::vector<double> times_at(const Reader& r, const std::string& field) {
  const json* v = r.find(field);
  if (v == nullptr || !v->is_array() || v->empty())
    r.fail(field, "a non-empty array of seconds", v);
  std::vector<double> out;
  for (std::size_t i = 0; i < v->size(); ++i) {
    const json& t = (*v)[i];
    if (!t.is_number() || !(t.get<double>() >= 0))
      r.fail(fmt::format("{}[{}]", field, i), "a number >= 0", &t);
    out.push_back(t.get<double>());
  }
  return out;
}

MeasuredAxes axes_v2(const Reader& a) {
  MeasuredAxes x;
  x.pattern = a.string("pattern");
  x.spec = a.string("spec");
  x.n = a.int64("n");
  x.nk = a.int64("nk");
  x.head_dim = a.integer("head_dim");
  x.head_dim_v = a.present("head_dim_v") ? a.integer("head_dim_v") : x.head_dim;
  x.heads = a.integer("heads");
  x.kv_heads = a.integer("kv_heads");
  x.batch = a.integer("batch");
  x.threads = a.integer("threads");
  x.block_q = a.integer("block_q");
  x.block_k = a.integer("block_k");
  x.tile_mode = a.string("tile_mode");
  if (x.tile_mode != "auto" && x.tile_mode != "partial")
    a.fail("tile_mode", "\"auto\" or \"partial\"", a.find("tile_mode"));
  const std::string ex = a.string("executor");
  const auto e = parse_executor(ex);
  if (!e) a.fail("executor", "one of " + executor_names(), a.find("executor"));
  x.executor = *e;
  if (a.present("path")) {
    x.path = a.string("path");
    if (!find_execution_path(x.path))
      a.fail("path", "one of " + execution_path_names(), a.find("path"));
  }
  x.inputs = a.string("inputs");
  x.seed = a.uint64("seed");
  if (a.present("alibi")) x.alibi = a.boolean("alibi");
  if (a.present("sinks")) x.sinks = a.boolean("sinks");
  if (a.present("bias")) x.bias = a.boolean("bias");
  for (const char* f : {"softcap", "scale"}) {
    const json* v = a.find(f);
    if (v == nullptr || v->is_null()) continue;
    if (!v->is_number() || !(v->get<double>() > 0) || !std::isfinite(v->get<double>()))
      a.fail(f, "a finite number > 0 or null", v);
    (std::string(f) == "softcap" ? x.softcap : x.scale) = v->get<double>();
  }
  if (a.present("phase")) {
    x.phase = a.string("phase");
    if (x.phase != "prefill" && x.phase != "decode")
      a.fail("phase", "\"prefill\" or \"decode\"", a.find("phase"));
  }
  if (a.present("kv_dtype")) {
    x.kv_dtype = a.string("kv_dtype");
    if (x.kv_dtype != "f32" && x.kv_dtype != "bf16" && x.kv_dtype != "int8")
      a.fail("kv_dtype", "one of f32, bf16, int8", a.find("kv_dtype"));
  }
  if (const json* c = a.find("cache"); c != nullptr && !c->is_null()) x.cache = a.string("cache");
  return x;
}

DecodeFigures decode_at(const Reader& d) {
  DecodeFigures x;
  x.prompt = d.int64("prompt");
  x.steps = d.int64("steps", 1);
  x.tokens_per_second = d.number("tokens_per_second");
  x.kv_bytes_per_step = d.number("kv_bytes_per_step");
  x.kv_read_gbps = d.number("kv_read_gbps");
  x.cache_bytes = d.int64("cache_bytes");
  x.cache_tokens = d.int64("cache_tokens");
  x.kernel = d.string("kernel");
  x.needle_recall = d.opt_number("needle_recall");
  x.rel_l2_max = d.opt_number("rel_l2_max");
  return x;
}

LayoutFigures layout_v2(const Reader& l) {
  LayoutFigures f;
  f.allowed_pairs = l.int64("allowed_pairs");
  f.computed_pairs = l.int64("computed_pairs");
  f.kept_tiles = l.int64("kept_tiles");
  f.full_tiles = l.int64("full_tiles");
  f.partial_tiles = l.int64("partial_tiles");
  f.layout_bytes = l.int64("layout_bytes");
  f.distinct_head_layouts = l.integer("distinct_head_layouts");
  const std::string build = l.string("build");
  if (build != "analytic" && build != "scanned")
    l.fail("build", "\"analytic\" or \"scanned\"", l.find("build"));
  f.scanned = build == "scanned";
  f.scanned_part = l.string("scanned_part");
  f.build_seconds = l.number("build_seconds");
  if (const auto p = l.object("paths", false)) {
    PathFigures q;
    q.tile_area_pairs = p->int64("tile_area_pairs");
    q.whole_pairs = p->int64("whole_pairs");
    q.run_pairs = p->int64("run_pairs");
    q.gather_pairs = p->int64("gather_pairs");
    q.diagonal_pairs = p->int64("diagonal_pairs");
    q.skipped_tiles = p->int64("skipped_tiles");
    q.diagonal_rows = p->int64("diagonal_rows");
    if (q.whole_pairs + q.run_pairs + q.gather_pairs + q.diagonal_pairs != f.computed_pairs)
      p->fail("whole_pairs",
              fmt::format("such that the paths sum to computed_pairs = {}", f.computed_pairs),
              p->find("whole_pairs"));
    f.paths = q;
  }
  return f;
}

Prediction predicted_v2(const Reader& p) {
  Prediction q;
  q.useful_flops = p.number("useful_flops");
  q.computed_flops = p.number("computed_flops");
  if (p.present("score_mod_flops")) q.score_mod_flops = p.number("score_mod_flops");
  q.bytes_read = p.number("bytes_read");
  q.bytes_written = p.number("bytes_written");
  q.input_bytes = p.int64("input_bytes");
  q.output_bytes = p.int64("output_bytes");
  q.workspace_bytes = p.int64("workspace_bytes");
  q.memory_bytes = p.int64("memory_bytes");
  q.seconds = p.number("seconds");
  return q;
}

AttentionTimes attention_v2(const Reader& a) {
  AttentionTimes t;
  t.warmup = a.integer("warmup");
  const int repeats = a.integer("repeats", 1);
  t.seconds = times_at(a, "seconds");
  if (static_cast<std::size_t>(repeats) != t.seconds.size())
    a.fail("repeats", fmt::format("the number of seconds ({})", t.seconds.size()),
           a.find("repeats"));
  return t;
}

Resources resources_at(const Reader& r) {
  Resources x;
  x.workspace_bytes = r.opt_int64("workspace_bytes");
  x.peak_rss_bytes = r.opt_int64("peak_rss_bytes");
  x.wall_seconds = r.opt_number("wall_seconds");
  x.tasks = r.opt_int64("tasks");
  x.split_rows = r.opt_int64("split_rows");
  if (r.present("threads_used")) x.threads_used = r.integer("threads_used");
  return x;
}

CheckFigures check_v2(const Reader& c) {
  CheckFigures k;
  k.max_abs_error = c.number("max_abs_error", true);
  k.max_rel_error = c.number("max_rel_error", true);
  k.rel_l2_error = c.number("rel_l2_error", true);
  k.max_lse_error = c.number("max_lse_error", true);
  k.finite = c.boolean("finite");
  k.reference_seconds = c.number("reference_seconds", true);
  return k;
}

FidelityFigures fidelity_at(const Reader& f) {
  FidelityFigures x;
  x.rel_l2_error = f.number("rel_l2_error", true);
  x.recall_mean = f.number("recall_mean", true);
  x.recall_min = f.number("recall_min", true);
  x.oracle_recall_mean = f.opt_number("oracle_recall_mean");
  x.oracle_recall_min = f.opt_number("oracle_recall_min");
  x.needle_hit = f.opt_number("needle_hit");
  x.inputs = f.string("inputs");
  x.baseline = f.string("baseline");
  return x;
}

Measurement from_v2(const Reader& r) {
  Measurement m;
  if (r.string("kind") != "point") r.fail("kind", "\"point\"", r.find("kind"));
  m.source = r.string("source");
  if (m.source != "run" && m.source != "stats" && m.source != "sweep")
    r.fail("source", "one of run, stats, sweep", r.find("source"));
  m.key = r.string("key");
  m.index = r.integer("index");
  m.status = status_at(r, "status");
  m.message = r.string("message");
  m.axes = axes_v2(r.required_object("axes"));
  if (auto l = r.object("layout")) m.layout = layout_v2(*l);
  if (auto p = r.object("predicted")) m.predicted = predicted_v2(*p);
  if (auto a = r.object("attention")) m.attention = attention_v2(*a);
  const auto res = r.object("resources");
  if (!res) r.fail("resources", "an object", r.find("resources"));
  m.resources = resources_at(*res);
  if (auto c = r.object("check")) m.check = check_v2(*c);
  if (auto f = r.object("fidelity")) m.fidelity = fidelity_at(*f);
  if (auto s = r.object("selection", false)) {
    SelectionFigures x;
    x.select_ms = s->number("select_ms", true);
    x.flops = s->number("flops", true);
    x.bytes = s->number("bytes", true);
    m.selection = x;
  }
  if (auto d = r.object("decode", false)) m.decode = decode_at(*d);
  if (r.present("saved")) m.saved = r.string("saved");
  return m;
}

// Schema 1: the untyped point records of results.jsonl (axes, predicted, peak_rss_bytes,
// wall_seconds and the child's "measure" object). What they did not record stays at its
// default (seed 0, one head layout, warmup 0) or NaN (check.max_rel_error, reference_seconds).
Measurement from_v1(const Reader& r) {
  Measurement m;
  if (r.present("kind") && r.string("kind") != "point") r.fail("kind", "\"point\"", r.find("kind"));
  m.source = "sweep";
  m.key = r.string("key");
  m.index = r.integer("index");
  m.status = status_at(r, "status");
  m.message = r.string("message");
  const Reader a = r.required_object("axes");
  MeasuredAxes& x = m.axes;
  x.pattern = a.string("pattern");
  x.spec = a.string("spec");
  x.n = x.nk = a.int64("n");
  x.head_dim = a.integer("head_dim");
  x.head_dim_v = x.head_dim;
  x.heads = a.integer("heads");
  x.kv_heads = a.integer("kv_heads");
  if (x.kv_heads == 0) x.kv_heads = x.heads;
  x.batch = a.integer("batch");
  x.threads = a.integer("threads");
  x.block_q = x.block_k = a.integer("block");
  x.tile_mode = a.string("tile_mode");
  x.inputs = a.string("inputs");
  if (auto p = r.object("predicted", false)) {
    Prediction q;
    q.useful_flops = p->number("useful_flops");
    q.computed_flops = p->number("computed_flops");
    q.memory_bytes = p->int64("memory_bytes");
    q.seconds = p->number("seconds");
    m.predicted = q;
  }
  m.resources.peak_rss_bytes = r.opt_int64("peak_rss_bytes");
  m.resources.wall_seconds = r.opt_number("wall_seconds");
  const auto me = r.object("measure", false);
  if (!me) return m;
  LayoutFigures l;
  l.allowed_pairs = me->int64("allowed_pairs");
  l.computed_pairs = me->int64("computed_pairs");
  l.kept_tiles = me->int64("kept_tiles");
  l.full_tiles = me->int64("full_tiles");
  l.partial_tiles = me->int64("partial_tiles");
  l.layout_bytes = me->int64("layout_bytes");
  l.build_seconds = me->number("build_seconds");
  m.layout = l;
  if (m.predicted) m.predicted->input_bytes = me->int64("input_bytes");
  const Reader t = me->required_object("attention_seconds");
  m.attention = AttentionTimes{0, times_at(t, "all")};
  m.resources.workspace_bytes = me->opt_int64("workspace_bytes");
  if (auto c = me->object("check", false)) {
    CheckFigures k;
    k.max_abs_error = c->number("max_abs_error", true);
    k.max_rel_error = kNaN;
    k.rel_l2_error = c->number("rel_l2_error", true);
    k.max_lse_error = c->number("max_lse_error", true);
    k.reference_seconds = kNaN;
    m.check = k;
  }
  if (auto f = me->object("fidelity", false)) m.fidelity = fidelity_at(*f);
  return m;
}

double middle(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t k = v.size() / 2;
  return v.size() % 2 == 1 ? v[k] : (v[k - 1] + v[k]) / 2;
}

}  // namespace

std::string_view status_name(Status s) {
  switch (s) {
    case Status::Ok:
      return "ok";
    case Status::Skipped:
      return "skipped";
    case Status::Timeout:
      return "timeout";
    case Status::Crashed:
      return "crashed";
    case Status::Oom:
      return "oom";
    case Status::Error:
      return "error";
  }
  return "error";
}

std::optional<Status> parse_status(std::string_view name) {
  for (Status s :
       {Status::Ok, Status::Skipped, Status::Timeout, Status::Crashed, Status::Oom, Status::Error})
    if (status_name(s) == name) return s;
  return std::nullopt;
}

double AttentionTimes::median() const {
  return seconds.empty() ? kNaN : middle(seconds);
}
double AttentionTimes::min() const {
  return seconds.empty() ? kNaN : *std::min_element(seconds.begin(), seconds.end());
}
double AttentionTimes::max() const {
  return seconds.empty() ? kNaN : *std::max_element(seconds.begin(), seconds.end());
}

std::optional<double> Measurement::density() const {
  const double all = static_cast<double>(axes.batch) * static_cast<double>(axes.heads) *
                     static_cast<double>(axes.n) * static_cast<double>(axes.nk);
  if (!layout || !(all > 0)) return std::nullopt;
  return static_cast<double>(layout->allowed_pairs) / all;
}

std::optional<double> Measurement::efficiency() const {
  if (!layout || layout->computed_pairs <= 0) return std::nullopt;
  return static_cast<double>(layout->allowed_pairs) / static_cast<double>(layout->computed_pairs);
}

namespace {
// flops / median seconds / 1e9, when both are known and the median is > 0.
std::optional<double> rate(const Measurement& m, std::optional<double> flops) {
  if (!flops || !m.attention || m.attention->seconds.empty()) return std::nullopt;
  const double t = m.attention->median();
  if (!(t > 0)) return std::nullopt;
  return *flops / t / 1e9;
}
// 2·d + 2·d_v per pair (the cost model's count), from the layout; else the prediction's.
std::optional<double> flops(const Measurement& m, bool useful) {
  if (m.layout)
    return (2.0 * m.axes.head_dim + 2.0 * m.axes.head_dim_v) *
           static_cast<double>(useful ? m.layout->allowed_pairs : m.layout->computed_pairs);
  if (m.predicted) return useful ? m.predicted->useful_flops : m.predicted->computed_flops;
  return std::nullopt;
}
}  // namespace

std::optional<double> Measurement::useful_gflops() const {
  return rate(*this, flops(*this, true));
}
std::optional<double> Measurement::computed_gflops() const {
  return rate(*this, flops(*this, false));
}

nlohmann::ordered_json to_json(const Measurement& m) {
  const MeasuredAxes& x = m.axes;
  ojson j;
  j["schema"] = kMeasurementSchema;
  j["kind"] = "point";
  j["source"] = m.source;
  j["key"] = m.key;
  j["index"] = m.index;
  j["status"] = status_name(m.status);
  j["message"] = m.message;
  j["axes"] = {{"pattern", x.pattern},
               {"spec", x.spec},
               {"n", x.n},
               {"nk", x.nk},
               {"head_dim", x.head_dim},
               {"head_dim_v", x.head_dim_v},
               {"heads", x.heads},
               {"kv_heads", x.kv_heads},
               {"batch", x.batch},
               {"threads", x.threads},
               {"block_q", x.block_q},
               {"block_k", x.block_k},
               {"tile_mode", x.tile_mode},
               {"executor", executor_name(x.executor)},
               {"path", x.path},
               {"inputs", x.inputs},
               {"seed", x.seed},
               {"alibi", x.alibi},
               {"softcap", x.softcap ? ojson(*x.softcap) : ojson(nullptr)},
               {"sinks", x.sinks},
               {"bias", x.bias},
               {"scale", x.scale ? ojson(*x.scale) : ojson(nullptr)},
               {"phase", x.phase},
               {"kv_dtype", x.kv_dtype},
               {"cache", x.cache ? ojson(*x.cache) : ojson(nullptr)}};
  j["layout"] = nullptr;
  if (const auto& l = m.layout)
    j["layout"] = {{"allowed_pairs", l->allowed_pairs},
                   {"computed_pairs", l->computed_pairs},
                   {"kept_tiles", l->kept_tiles},
                   {"full_tiles", l->full_tiles},
                   {"partial_tiles", l->partial_tiles},
                   {"layout_bytes", l->layout_bytes},
                   {"distinct_head_layouts", l->distinct_head_layouts},
                   {"build", l->scanned ? "scanned" : "analytic"},
                   {"scanned_part", l->scanned_part},
                   {"build_seconds", num(l->build_seconds)},
                   {"density", opt(m.density())},
                   {"efficiency", opt(m.efficiency())},
                   {"paths", nullptr}};
  if (m.layout && m.layout->paths) {
    const PathFigures& p = *m.layout->paths;
    j["layout"]["paths"] = {{"tile_area_pairs", p.tile_area_pairs},
                            {"whole_pairs", p.whole_pairs},
                            {"run_pairs", p.run_pairs},
                            {"gather_pairs", p.gather_pairs},
                            {"diagonal_pairs", p.diagonal_pairs},
                            {"skipped_tiles", p.skipped_tiles},
                            {"diagonal_rows", p.diagonal_rows}};
  }
  j["predicted"] = nullptr;
  if (const auto& p = m.predicted)
    j["predicted"] = {{"useful_flops", num(p->useful_flops)},
                      {"computed_flops", num(p->computed_flops)},
                      {"score_mod_flops", num(p->score_mod_flops)},
                      {"bytes_read", num(p->bytes_read)},
                      {"bytes_written", num(p->bytes_written)},
                      {"input_bytes", p->input_bytes},
                      {"output_bytes", p->output_bytes},
                      {"workspace_bytes", p->workspace_bytes},
                      {"memory_bytes", p->memory_bytes},
                      {"seconds", num(p->seconds)}};
  j["attention"] = nullptr;
  if (const auto& a = m.attention)
    j["attention"] = {{"warmup", a->warmup},
                      {"repeats", a->seconds.size()},
                      {"seconds", a->seconds},
                      {"median", num(a->median())},
                      {"min", num(a->min())},
                      {"max", num(a->max())},
                      {"useful_gflops", opt(m.useful_gflops())},
                      {"computed_gflops", opt(m.computed_gflops())}};
  const Resources& r = m.resources;
  j["resources"] = {
      {"workspace_bytes", opt(r.workspace_bytes)}, {"peak_rss_bytes", opt(r.peak_rss_bytes)},
      {"wall_seconds", opt(r.wall_seconds)},       {"tasks", opt(r.tasks)},
      {"split_rows", opt(r.split_rows)},           {"threads_used", opt(r.threads_used)}};
  j["check"] = nullptr;
  if (const auto& c = m.check)
    j["check"] = {{"max_abs_error", num(c->max_abs_error)},
                  {"max_rel_error", num(c->max_rel_error)},
                  {"rel_l2_error", num(c->rel_l2_error)},
                  {"max_lse_error", num(c->max_lse_error)},
                  {"finite", c->finite},
                  {"reference_seconds", num(c->reference_seconds)}};
  j["fidelity"] = nullptr;
  if (const auto& f = m.fidelity)
    j["fidelity"] = {{"rel_l2_error", num(f->rel_l2_error)},
                     {"recall_mean", num(f->recall_mean)},
                     {"recall_min", num(f->recall_min)},
                     {"oracle_recall_mean", opt(f->oracle_recall_mean)},
                     {"oracle_recall_min", opt(f->oracle_recall_min)},
                     {"needle_hit", opt(f->needle_hit)},
                     {"inputs", f->inputs},
                     {"baseline", f->baseline}};
  if (const auto& s = m.selection)
    j["selection"] = {
        {"select_ms", num(s->select_ms)}, {"flops", num(s->flops)}, {"bytes", num(s->bytes)}};
  if (const auto& d = m.decode)
    j["decode"] = {{"prompt", d->prompt},
                   {"steps", d->steps},
                   {"tokens_per_second", num(d->tokens_per_second)},
                   {"kv_bytes_per_step", num(d->kv_bytes_per_step)},
                   {"kv_read_gbps", num(d->kv_read_gbps)},
                   {"cache_bytes", d->cache_bytes},
                   {"cache_tokens", d->cache_tokens},
                   {"kernel", d->kernel},
                   {"needle_recall", opt(d->needle_recall)},
                   {"rel_l2_max", opt(d->rel_l2_max)}};
  j["saved"] = opt(m.saved);
  return j;
}

Measurement measurement_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object())
    throw UsageError(
        fmt::format("{}: a measurement record must be a JSON object, found {}", where, shown(j)));
  const Reader r(j, where, "");
  if (!r.present("schema")) return from_v1(r);
  const std::int64_t schema = r.int64("schema", 1);
  if (schema > kMeasurementSchema)
    throw UsageError(fmt::format(
        "{}: schema {} is newer than this spattn reads (schema {} and earlier): update spattn",
        where, schema, kMeasurementSchema));
  return schema == 1 ? from_v1(r) : from_v2(r);
}

}  // namespace spattn::experiments
