// The table of sweep axes (see axes.hpp). Adding an axis: one row below, the SweepPoint field it
// sets, and a line in the "Axes" table of experiments/README.md.
#include "spattn/experiments/axes.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "spattn/attention/kv_tensor.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/experiments/executor.hpp"
#include "spattn/experiments/experiment.hpp"
#include "spattn/patterns/geometry.hpp"

namespace spattn::experiments {
namespace {

constexpr std::int64_t kMaxBatch = 65536;
constexpr std::int64_t kMaxThreads = 1024;
constexpr std::int64_t kMaxDecodeSteps = std::int64_t{1} << 24;

std::int64_t as_int(const AxisValue& v) {
  return std::get<std::int64_t>(v);
}

std::vector<AxisDef> make_table() {
  using K = AxisKind;
  return {
      // The axes of the first key format, in their key order.
      {.name = "seq_len",
       .key = "n",
       .field = "n",
       .kind = K::Length,
       .lo = 1,
       .hi = kMaxTokens,
       .meaning = "tokens",
       .always_in_key = true,
       .set = [](SweepPoint& p, const AxisValue& v) { p.n = as_int(v); },
       .get = [](const SweepPoint& p) { return AxisValue{p.n}; }},
      {.name = "head_dim",
       .key = "d",
       .field = "head_dim",
       .lo = 1,
       .hi = kMaxHeadDim,
       .default_value = std::int64_t{64},
       .always_in_key = true,
       .set = [](SweepPoint& p, const AxisValue& v) { p.head_dim = static_cast<int>(as_int(v)); },
       .get = [](const SweepPoint& p) { return AxisValue{std::int64_t{p.head_dim}}; }},
      {.name = "heads",
       .key = "h",
       .field = "heads",
       .lo = 1,
       .hi = kMaxHeads,
       .default_value = std::int64_t{8},
       .always_in_key = true,
       .set = [](SweepPoint& p, const AxisValue& v) { p.heads = static_cast<int>(as_int(v)); },
       .get = [](const SweepPoint& p) { return AxisValue{std::int64_t{p.heads}}; }},
      {.name = "kv_heads",
       .key = "hkv",
       .field = "kv_heads",
       .lo = 0,
       .hi = kMaxHeads,
       .meaning = "0: equal to heads",
       .default_value = std::int64_t{0},
       .always_in_key = true,
       .set =
           [](SweepPoint& p, const AxisValue& v) {
             p.kv_heads = as_int(v) == 0 ? p.heads : static_cast<int>(as_int(v));
           },
       .get = [](const SweepPoint& p) { return AxisValue{std::int64_t{p.kv_heads}}; }},
      {.name = "batch",
       .key = "b",
       .field = "batch",
       .lo = 1,
       .hi = kMaxBatch,
       .default_value = std::int64_t{1},
       .always_in_key = true,
       .set = [](SweepPoint& p, const AxisValue& v) { p.batch = static_cast<int>(as_int(v)); },
       .get = [](const SweepPoint& p) { return AxisValue{std::int64_t{p.batch}}; }},
      {.name = "threads",
       .key = "t",
       .field = "threads",
       .lo = 0,
       .hi = kMaxThreads,
       .meaning = "0: all cores",
       .default_value = std::int64_t{0},
       .always_in_key = true,
       .set = [](SweepPoint& p, const AxisValue& v) { p.threads = static_cast<int>(as_int(v)); },
       .get = [](const SweepPoint& p) { return AxisValue{std::int64_t{p.threads}}; }},
      {.name = "block",
       .key = "block",
       .field = "block",
       .kind = K::Block,
       .default_value = std::int64_t{64},
       .always_in_key = true,
       .set = [](SweepPoint& p, const AxisValue& v) { p.block = static_cast<int>(as_int(v)); },
       .get = [](const SweepPoint& p) { return AxisValue{std::int64_t{p.block}}; }},
      {.name = "tile_mode",
       .key = "tile",
       .field = "tile_mode",
       .kind = K::Name,
       .names = {"auto", "partial"},
       .default_value = std::string("auto"),
       .always_in_key = true,
       .set = [](SweepPoint& p, const AxisValue& v) { p.tile_mode = std::get<std::string>(v); },
       .get = [](const SweepPoint& p) { return AxisValue{p.tile_mode}; }},
      // Later axes: in the key only when off their default (always_in_key = false).
      {.name = "executor",
       .key = "exec",
       .field = "executor",
       .kind = K::Name,
       .names = executor_name_list(),
       .default_value = std::string(executor_name(Executor::Flash)),
       .set =
           [](SweepPoint& p, const AxisValue& v) {
             p.executor = parse_executor(std::get<std::string>(v)).value();
           },
       .get =
           [](const SweepPoint& p) { return AxisValue{std::string(executor_name(p.executor))}; }},
      {.name = "path",
       .key = "path",
       .field = "path",
       .kind = K::Name,
       .names = execution_path_name_list(),
       .default_value = std::string("auto"),
       .set = [](SweepPoint& p,
                 const AxisValue& v) { p.path = parse_execution_path(std::get<std::string>(v)); },
       .get =
           [](const SweepPoint& p) { return AxisValue{std::string(execution_path_name(p.path))}; }},
      // Score modifications (score_mod.hpp): ALiBi with the paper's slopes, soft-capping C.
      {.name = "alibi",
       .key = "alibi",
       .field = "alibi",
       .kind = K::Name,
       .names = {"false", "true"},
       .default_value = std::string("false"),
       .set = [](SweepPoint& p,
                 const AxisValue& v) { p.alibi = std::get<std::string>(v) == "true"; },
       .get =
           [](const SweepPoint& p) { return AxisValue{std::string(p.alibi ? "true" : "false")}; }},
      {.name = "dv",
       .key = "dv",
       .field = "head_dim_v",
       .lo = 0,
       .hi = kMaxHeadDim,
       .meaning = "value head dim d_v; 0: head_dim",
       .default_value = std::int64_t{0},
       .set = [](SweepPoint& p, const AxisValue& v) { p.head_dim_v = static_cast<int>(as_int(v)); },
       .get = [](const SweepPoint& p) { return AxisValue{std::int64_t{p.head_dim_v}}; }},
      {.name = "softcap",
       .key = "softcap",
       .field = "softcap",
       .lo = 0,
       .hi = 1000000,
       .meaning = "soft-capping constant C; 0: none",
       .default_value = std::int64_t{0},
       .set = [](SweepPoint& p, const AxisValue& v) { p.softcap = static_cast<double>(as_int(v)); },
       .get = [](const SweepPoint& p) { return AxisValue{std::llround(p.softcap)}; }},
      // The decode side (decode_sim.hpp): which phase, K/V storage, cache policy, steps.
      {.name = "phase",
       .key = "phase",
       .field = "phase",
       .kind = K::Name,
       .names = {"prefill", "decode"},
       .default_value = std::string("prefill"),
       .set = [](SweepPoint& p, const AxisValue& v) { p.phase = std::get<std::string>(v); },
       .get = [](const SweepPoint& p) { return AxisValue{p.phase}; }},
      {.name = "kv_dtype",
       .key = "kv",
       .field = "kv_dtype",
       .kind = K::Name,
       .names = {"f32", "bf16", "int8"},
       .default_value = std::string("f32"),
       .set = [](SweepPoint& p,
                 const AxisValue& v) { p.kv_dtype = parse_kv_dtype(std::get<std::string>(v)); },
       .get =
           [](const SweepPoint& p) { return AxisValue{std::string(kv_dtype_name(p.kv_dtype))}; }},
      {.name = "cache",
       .key = "cache",
       .field = "cache",
       .kind = K::Policy,
       .default_value = std::string("full"),
       .set = [](SweepPoint& p, const AxisValue& v) { p.cache = std::get<std::string>(v); },
       .get = [](const SweepPoint& p) { return AxisValue{p.cache}; }},
      {.name = "decode_steps",
       .key = "steps",
       .field = "decode_steps",
       .lo = 1,
       .hi = kMaxDecodeSteps,
       .meaning = "decode steps per point",
       .default_value = std::int64_t{16},
       .set = [](SweepPoint& p, const AxisValue& v) { p.decode_steps = as_int(v); },
       .get = [](const SweepPoint& p) { return AxisValue{p.decode_steps}; }},
  };
}

}  // namespace

std::string axis_value_text(const AxisValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return std::get<std::string>(v);
}

const std::vector<AxisDef>& axis_table() {
  static const std::vector<AxisDef> table = make_table();
  return table;
}

std::size_t axis_index(std::string_view name) {
  const std::vector<AxisDef>& t = axis_table();
  for (std::size_t i = 0; i < t.size(); ++i)
    if (t[i].name == name) return i;
  throw std::out_of_range("no sweep axis is named '" + std::string(name) + "'");
}

AxisValues::AxisValues() {
  for (const AxisDef& a : axis_table()) {
    values_.emplace_back();
    if (a.default_value) values_.back().push_back(*a.default_value);
  }
}

const std::vector<AxisValue>& AxisValues::operator[](std::string_view name) const {
  return values_.at(axis_index(name));
}

std::vector<AxisValue>& AxisValues::operator[](std::string_view name) {
  return values_.at(axis_index(name));
}

std::vector<std::int64_t> AxisValues::ints(std::string_view name) const {
  std::vector<std::int64_t> out;
  for (const AxisValue& v : (*this)[name]) out.push_back(std::get<std::int64_t>(v));
  return out;
}

std::vector<std::string> AxisValues::names(std::string_view name) const {
  std::vector<std::string> out;
  for (const AxisValue& v : (*this)[name]) out.push_back(std::get<std::string>(v));
  return out;
}

}  // namespace spattn::experiments
