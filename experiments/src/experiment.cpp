// Experiment files (TOML) and their sweep points. The schema is documented in
// experiments/README.md ("Experiment files"); every limit below appears there too.
#include "spattn/experiments/experiment.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <variant>

#include "spattn/attention/kvcache/policy.hpp"
#include "spattn/experiments/report_layouts.hpp"
#include "spattn/patterns/edit_distance.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/geometry.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/io/plugins.hpp"
#include "spattn/patterns/io/regular_file.hpp"
#include "spattn/patterns/selector.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::experiments {
namespace {

// Limits that keep a generated or mistyped file from expanding into hours of work or memory.
constexpr std::size_t kMaxTextBytes = std::size_t{16} << 20;  // experiment file size
constexpr std::size_t kMaxAxisValues = 64;                    // per axis, lists and ranges
constexpr std::size_t kMaxPatterns = 1024;
constexpr std::int64_t kMaxPoints = 100000;
constexpr std::size_t kMaxNameLength = 100;         // `name` (a directory name)
constexpr std::size_t kMaxDisplayNameLength = 200;  // pattern display names
constexpr std::int64_t kMaxRepeats = 100000;
constexpr double kMaxTimeoutSeconds = 1e6;
constexpr double kMaxPredictGflops = 1e9;
constexpr double kMaxScale = 1e6;  // the softmax scale (TOML `scale`)
constexpr std::int64_t kMaxBytes = std::int64_t{1} << 62;

const std::vector<std::string> kPatternKeys = {"name",  "spec",  "max_n",
                                               "min_n", "block", "fidelity_baseline"};
const std::vector<std::string> kRangeKeys = {"from", "to", "factor"};
const std::vector<std::string> kInputsKeys = {"kind", "dir", "tokens"};
const std::vector<std::string> kReportKeys = {"layout", "baseline", "budget", "published"};
const std::vector<std::string> kPublishedKeys = {"pattern", "source", "quantity", "n", "values"};
const std::vector<std::string> kPublishedQuantities = {"speedup", "time_ms", "pairs_slope"};

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

std::string show(std::string_view s, std::size_t max_chars = 60) {
  return spattn::quoted(s, max_chars);
}

// "string \"abc\"", "integer 5", "float 2.5", "array", ... for "got ..." in messages.
std::string describe(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "string " + show(n.as_string()->get());
    case toml::node_type::integer:
      return fmt::format("integer {}", n.as_integer()->get());
    case toml::node_type::floating_point:
      return fmt::format("float {}", n.as_floating_point()->get());
    case toml::node_type::boolean:
      return fmt::format("boolean {}", n.as_boolean()->get());
    case toml::node_type::array:
      return fmt::format("array of {} values", n.as_array()->size());
    case toml::node_type::table:
      return "table";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    default:
      return "nothing";
  }
}

int line_of(const toml::node& n) {
  return static_cast<int>(n.source().begin.line);
}

// toml++ 3.3 (Debian) reaches __builtin_unreachable (undefined behaviour) when it asks whether a
// code point in U+00A1..U+0499 is whitespace (marzer/tomlplusplus#190, #295; fixed upstream after
// 3.3). It asks outside strings and comments, and after a line-ending backslash in a multi-line
// basic string. Non-ASCII text outside strings and comments is invalid TOML anyway, so this scan
// rejects it first, and rejects any non-ASCII character as the first one after a line-ending
// backslash (valid TOML, but it cannot be parsed safely). Strings and comments are tracked as
// toml++ lexes them; where the two could disagree, toml++ has already met a syntax error.
void reject_unsafe_unicode(const std::string& t, const std::string& source) {
  enum class State { kOut, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };
  State state = State::kOut;
  std::size_t line = 1, line_start = 0;
  const std::size_t n = t.size();
  auto fail_at = [&](std::size_t i, std::string_view what) {
    throw UsageError(fmt::format("{}:{}:{}: {}", source, line, i - line_start + 1, what));
  };
  auto run_of = [&](std::size_t i, char c) {
    std::size_t k = 0;
    while (i + k < n && t[i + k] == c) ++k;
    return k;
  };
  auto newline = [&](std::size_t i) {
    ++line;
    line_start = i + 1;
  };
  std::vector<char> nest;  // open '[' (array value), '{' (inline table), 'h' (table header)
  bool value = false;      // the next bare text is a value, not a key
  auto terminator = [](char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || c == ']' || c == '}' || c == ',' || c == '#';
  };
  constexpr std::string_view kOutside =
      "non-ASCII character outside a string or comment (TOML allows them only in strings and "
      "comments)";
  std::size_t i = t.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;  // UTF-8 byte order mark
  while (i < n) {
    const char c = t[i];
    const bool ascii = static_cast<unsigned char>(c) < 0x80;
    switch (state) {
      case State::kOut:
        if (!ascii) fail_at(i, kOutside);
        if (c == '#') {
          state = State::kComment;
        } else if (c == '"' || c == '\'') {
          const bool multi = run_of(i, c) >= 3;
          state = c == '"' ? (multi ? State::kMultiBasic : State::kBasic)
                           : (multi ? State::kMultiLiteral : State::kLiteral);
          i += multi ? 3 : 1;
          continue;
        } else if (c == '=') {
          value = true;
        } else if (c == '[') {
          nest.push_back(value ? '[' : 'h');  // an array value, or a table header
        } else if (c == '{') {
          nest.push_back('{');
          value = false;
        } else if (c == ']' || c == '}' || c == ',') {
          if (c != ',' && !nest.empty()) nest.pop_back();
          value = !nest.empty() && nest.back() == '[';
        } else if (c == '\n') {
          if (nest.empty()) value = false;
        } else if (value && !terminator(c)) {
          // A bare value (number, boolean, date, inf, nan): toml++ reads it up to a value
          // terminator, through quotes and '=', asking of each character whether it is one.
          while (i < n && !terminator(t[i])) {
            if (static_cast<unsigned char>(t[i]) >= 0x80) fail_at(i, kOutside);
            ++i;
          }
          continue;
        }
        break;
      case State::kComment:
        if (c == '\n') {
          state = State::kOut;
          if (nest.empty()) value = false;
        }
        break;
      case State::kBasic:
        if (c == '\\') {
          if (i + 1 < n && t[i + 1] == '\n') newline(i + 1);
          i += 2;  // the escaped character cannot end the string
          continue;
        }
        if (c == '"' || c == '\n') state = State::kOut;
        break;
      case State::kLiteral:
        if (c == '\'' || c == '\n') state = State::kOut;
        break;
      case State::kMultiBasic:
        if (c == '\\') {
          std::size_t j = i + 1;
          while (j < n && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r' || t[j] == '\n')) {
            if (t[j] == '\n') newline(j);
            ++j;
          }
          if (j < n && static_cast<unsigned char>(t[j]) >= 0x80)
            fail_at(j,
                    "non-ASCII character right after a backslash in a multi-line string: "
                    "the TOML parser cannot handle it safely; write it as \\uXXXX or move it "
                    "to the line before the backslash");
          i = j == i + 1 ? j + 1 : j;  // an escape, or the first character after the break
          continue;
        }
        if (c == '"' && run_of(i, '"') >= 3) {
          i += run_of(i, '"');  // up to two quotes before the closing three belong to the string
          state = State::kOut;
          continue;
        }
        break;
      case State::kMultiLiteral:
        if (c == '\'' && run_of(i, '\'') >= 3) {
          i += run_of(i, '\'');
          state = State::kOut;
          continue;
        }
        break;
    }
    if (c == '\n') newline(i);
    ++i;
  }
}

// A grid as read: the values of every axis (axes.hpp) and the TOML line that set each (0: not
// given, the default).
struct Grid {
  AxisValues values;
  std::vector<int> lines = std::vector<int>(axis_table().size(), 0);
  int line(std::string_view axis) const { return lines[axis_index(axis)]; }
};

// The axes a pattern's geometry depends on, as check_patterns_fit reads them.
struct Axes {
  struct {
    std::vector<std::int64_t> values;
  } seq_len;
  struct {
    std::vector<int> values;
  } heads;
};

Axes geometry_axes(const Grid& g) {
  Axes a;
  a.seq_len.values = g.values.ints("seq_len");
  for (const std::int64_t h : g.values.ints("heads")) a.heads.values.push_back(static_cast<int>(h));
  return a;
}

// The values axis_table()[i] takes for `pattern`: seq_len without the values outside its
// min_n..max_n, block replaced by its own block; the other axes as they are.
std::vector<AxisValue> pattern_axis(const PatternEntry& pattern, const AxisValues& grid,
                                    std::size_t i) {
  const std::string_view name = axis_table()[i].name;
  if (name == "block" && pattern.block != 0) return {AxisValue{std::int64_t{pattern.block}}};
  if (name != "seq_len") return grid.at(i);
  std::vector<AxisValue> out;
  for (const AxisValue& v : grid.at(i)) {
    const std::int64_t n = std::get<std::int64_t>(v);
    if ((pattern.max_n == 0 || n <= pattern.max_n) && n >= pattern.min_n) out.push_back(v);
  }
  return out;
}

// Reads one experiment text; every failure is a UsageError "SOURCE:LINE: message".
class Reader {
 public:
  Reader(const std::string& source, const Registry& registry, bool file_plugins = true)
      : source_(source), registry_(registry), file_plugins_(file_plugins) {}

  Experiment read(const std::string& text);
  // `plugins = ["path", ...]`: resolved next to the file and, for the global registry, loaded.
  void read_plugins(const toml::node& n, Experiment& e) const;

  // The value readers (public for the table of settings): each fails with the TOML line, the
  // key's path, what is allowed and what it got.
  [[noreturn]] void fail(int line, const std::string& message) const {
    if (line > 0) throw UsageError(fmt::format("{}:{}: {}", source_, line, message));
    throw UsageError(fmt::format("{}: {}", source_, message));
  }

  [[noreturn]] void unknown_key(const toml::key& key, const std::string& where,
                                const std::vector<std::string>& allowed) const {
    std::string hint;
    std::size_t best = 3;
    for (const std::string& a : allowed) {
      const std::size_t d = edit_distance(key.str(), a);
      if (d < best) {
        best = d;
        hint = fmt::format(" (did you mean '{}'?)", a);
      }
    }
    fail(static_cast<int>(key.source().begin.line),
         fmt::format("unknown key {} in {}{}; allowed keys: {}", show(key.str()), where, hint,
                     join(allowed)));
  }

  std::int64_t get_int(const toml::node& n, const std::string& path, std::int64_t lo,
                       std::int64_t hi, std::string_view meaning = {}) const {
    const std::string range = hi == std::numeric_limits<std::int64_t>::max()
                                  ? fmt::format(">= {}", lo)
                                  : fmt::format("{}..{}", lo, hi);
    const std::string extra = meaning.empty() ? "" : fmt::format(" ({})", meaning);
    if (!n.is_integer())
      fail(line_of(n),
           fmt::format("{} must be an integer {}{}, got {}", path, range, extra, describe(n)));
    const std::int64_t v = n.as_integer()->get();
    if (v < lo || v > hi)
      fail(line_of(n), fmt::format("{} = {} is out of range: allowed {}{}", path, v, range, extra));
    return v;
  }

  double get_number(const toml::node& n, const std::string& path, double lo_exclusive,
                    double hi) const {
    double v = 0;
    if (n.is_integer())
      v = static_cast<double>(n.as_integer()->get());
    else if (n.is_floating_point())
      v = n.as_floating_point()->get();
    else
      fail(line_of(n), fmt::format("{} must be a number > {} and <= {}, got {}", path, lo_exclusive,
                                   hi, describe(n)));
    if (!(v > lo_exclusive && v <= hi))  // also rejects nan
      fail(line_of(n), fmt::format("{} = {} is out of range: allowed > {} and <= {}", path, v,
                                   lo_exclusive, hi));
    return v;
  }

  bool get_bool(const toml::node& n, const std::string& path) const {
    if (!n.is_boolean())
      fail(line_of(n), fmt::format("{} must be true or false, got {}", path, describe(n)));
    return n.as_boolean()->get();
  }

  std::string get_string(const toml::node& n, const std::string& path) const {
    if (!n.is_string())
      fail(line_of(n), fmt::format("{} must be a string, got {}", path, describe(n)));
    return n.as_string()->get();
  }

  std::string get_choice(const toml::node& n, const std::string& path,
                         const std::vector<std::string>& allowed) const {
    if (!n.is_string())
      fail(line_of(n), fmt::format("{} must be one of the strings {}, got {}", path, join(allowed),
                                   describe(n)));
    const std::string v = n.as_string()->get();
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      fail(line_of(n),
           fmt::format("{} = {} is not allowed: use one of {}", path, show(v), join(allowed)));
    return v;
  }

  // A byte count: a positive integer, or a string "<number> [unit]" with units B, K/KB/KiB,
  // M/MB/MiB, G/GB/GiB, T/TB/TiB (case-insensitive, all powers of 1024).
  std::int64_t get_bytes(const toml::node& n, const std::string& path) const {
    const std::string allowed =
        "a positive integer (bytes) or a string like \"512MiB\", \"2GiB\", \"1.5G\" (units B, K, "
        "M, G, T with optional B or iB; powers of 1024)";
    if (n.is_integer()) {
      const std::int64_t v = n.as_integer()->get();
      if (v < 1 || v > kMaxBytes)
        fail(line_of(n),
             fmt::format("{} = {} is out of range: allowed 1..{} bytes", path, v, kMaxBytes));
      return v;
    }
    if (!n.is_string())
      fail(line_of(n), fmt::format("{} must be {}, got {}", path, allowed, describe(n)));
    const std::string s = n.as_string()->get();
    try {
      return parse_byte_count(s, fmt::format("{} = {}", path, show(s)), kMaxBytes);
    } catch (const UsageError& e) {
      fail(line_of(n), e.what());
    }
  }

  // An axis value or an array of 1..kMaxAxisValues distinct ones; `one` reads one element.
  template <class F>
  std::vector<AxisValue> read_list(const toml::node& n, const std::string& path, F one) const {
    std::vector<AxisValue> values;
    if (const toml::array* a = n.as_array()) {
      if (a->empty())
        fail(line_of(n), fmt::format("{} is an empty array: give at least one value", path));
      if (a->size() > kMaxAxisValues)
        fail(line_of(n), fmt::format("{} has {} values, more than the limit of {} per axis", path,
                                     a->size(), kMaxAxisValues));
      for (std::size_t i = 0; i < a->size(); ++i) {
        const toml::node& e = *a->get(i);
        values.push_back(one(e, fmt::format("{}[{}]", path, i)));
        for (std::size_t j = 0; j < i; ++j)
          if (values[j] == values[i])
            fail(line_of(e), fmt::format("{}[{}] repeats the value of {}[{}]; the values of an "
                                         "axis must be distinct",
                                         path, i, path, j));
      }
    } else {
      values.push_back(one(n, path));
    }
    return values;
  }

  int get_block(const toml::node& e, const std::string& p) const {
    if (!e.is_integer())
      fail(line_of(e),
           fmt::format("{} must be one of the integers 16, 32, 64, 128, got {}", p, describe(e)));
    const std::int64_t v = e.as_integer()->get();
    if (v < 16 || v > 128 || !is_valid_block_size(static_cast<int>(v)))
      fail(line_of(e), fmt::format("{} = {} is not a block size: use 16, 32, 64 or 128", p, v));
    return static_cast<int>(v);
  }

  // The values of axis `a` at `n`, checked against its row of axis_table().
  std::vector<AxisValue> axis_values(const AxisDef& a, const toml::node& n,
                                     const std::string& path) const;
  std::vector<AxisValue> length_axis(const AxisDef& a, const toml::node& n,
                                     const std::string& path) const;
  std::vector<AxisValue> geometric_range(const AxisDef& a, const toml::table& t,
                                         const std::string& path) const;
  InputSpec read_inputs(const toml::node& n, const std::string& path) const;
  void check_input_dir(const InputSpec& in, const std::string& path, int line) const;
  // Applies an axis or setting key (in [quick]: only the axes [quick] may override); false when
  // `key` is neither.
  bool apply(const std::string& key, const toml::node& n, const std::string& path, bool quick,
             Grid& grid, Settings& s) const;
  std::vector<PatternEntry> read_patterns(const toml::node& n) const;
  PatternEntry read_pattern(const toml::node& n, const std::string& path) const;
  void check_spec(const std::string& spec, int line, const std::string& path) const;
  void read_report(const toml::table& t, Experiment& e, int line) const;
  PublishedFigures read_published(const toml::node& n, const std::string& path,
                                  const Experiment& e) const;
  void check_axes(const Grid& a, const std::vector<PatternEntry>& patterns, std::string_view what,
                  int line) const;
  void check_patterns_fit(const Axes& a, const std::vector<PatternEntry>& patterns,
                          const Settings& s, std::string_view what) const;

 private:
  const std::string& source_;
  const Registry& registry_;
  bool file_plugins_;  // read `plugins` (else ignore the key: the caller loaded them)
};

std::vector<AxisValue> Reader::geometric_range(const AxisDef& a, const toml::table& t,
                                               const std::string& path) const {
  const int line = line_of(t);
  for (auto&& [k, v] : t)
    if (std::find(kRangeKeys.begin(), kRangeKeys.end(), k.str()) == kRangeKeys.end())
      unknown_key(k, path + " (a range {from, to, factor})", kRangeKeys);
  const toml::node* from_node = t.get("from");
  const toml::node* to_node = t.get("to");
  if (!from_node || !to_node)
    fail(line, fmt::format("{}: a range needs both 'from' and 'to' (and optionally 'factor', "
                           "default 2), e.g. {{from = 1024, to = 65536, factor = 2}}",
                           path));
  const std::int64_t from = get_int(*from_node, path + ".from", a.lo, a.hi);
  const std::int64_t to = get_int(*to_node, path + ".to", a.lo, a.hi);
  if (to < from)
    fail(line_of(*to_node),
         fmt::format("{} is an empty range: to = {} is less than from = {}", path, to, from));
  std::vector<AxisValue> values;
  const toml::node* factor_node = t.get("factor");
  if (!factor_node || factor_node->is_integer()) {
    const std::int64_t f = factor_node ? get_int(*factor_node, path + ".factor", 2, 1 << 20) : 2;
    for (std::int64_t v = from;; v *= f) {
      values.emplace_back(v);
      if (values.size() > kMaxAxisValues)
        fail(line, fmt::format("{} from {} to {} by factor {} has more than {} values (the limit "
                               "per axis): use a larger factor or a shorter range",
                               path, from, to, f, kMaxAxisValues));
      if (v > to / f) break;
    }
    return values;
  }
  if (!factor_node->is_floating_point())
    fail(line_of(*factor_node),
         fmt::format("{}.factor must be a number > 1, got {}", path, describe(*factor_node)));
  const double f = factor_node->as_floating_point()->get();
  if (!(f > 1.0 && f <= 1048576.0))
    fail(line_of(*factor_node),
         fmt::format("{}.factor = {} is out of range: allowed > 1 and <= 1048576", path, f));
  // Count the steps first so that a factor barely above 1 cannot loop for long.
  const double steps = std::floor(
      std::log(static_cast<double>(to) / static_cast<double>(from)) / std::log(f) + 1e-9);
  if (steps + 1 > static_cast<double>(kMaxAxisValues))
    fail(line, fmt::format("{} from {} to {} by factor {} has more than {} values (the limit per "
                           "axis): use a larger factor or a shorter range",
                           path, from, to, f, kMaxAxisValues));
  for (int k = 0; k <= static_cast<int>(steps); ++k) {
    const double exact = static_cast<double>(from) * std::pow(f, k);
    const std::int64_t v = std::llround(exact);
    if (v > to) break;  // rounding of the last step
    if (!values.empty() && v <= std::get<std::int64_t>(values.back()))
      fail(line_of(*factor_node),
           fmt::format("{}: factor {} from {} gives the value {} twice after rounding to integers "
                       "(steps {} and {}): use a larger factor or a larger 'from'",
                       path, f, from, v, k - 1, k));
    values.emplace_back(v);
  }
  return values;
}

std::vector<AxisValue> Reader::length_axis(const AxisDef& a, const toml::node& n,
                                           const std::string& path) const {
  if (const toml::table* t = n.as_table()) return geometric_range(a, *t, path);
  if (!n.is_integer() && !n.is_array())
    fail(line_of(n), fmt::format("{} must be an integer, an array of integers or a range "
                                 "{{from, to, factor}}, got {}",
                                 path, describe(n)));
  return read_list(n, path, [&](const toml::node& e, const std::string& p) {
    return AxisValue{get_int(e, p, a.lo, a.hi, a.meaning)};
  });
}

std::vector<AxisValue> Reader::axis_values(const AxisDef& a, const toml::node& n,
                                           const std::string& path) const {
  switch (a.kind) {
    case AxisKind::Length:
      return length_axis(a, n, path);
    case AxisKind::Int:
      return read_list(n, path, [&](const toml::node& e, const std::string& p) {
        return AxisValue{get_int(e, p, a.lo, a.hi, a.meaning)};
      });
    case AxisKind::Block:
      return read_list(n, path, [&](const toml::node& e, const std::string& p) {
        return AxisValue{std::int64_t{get_block(e, p)}};
      });
    case AxisKind::Name:
      return read_list(n, path, [&](const toml::node& e, const std::string& p) {
        // A true/false axis (alibi) takes TOML booleans as well as the names.
        if (e.is_boolean() && a.names == std::vector<std::string>{"false", "true"})
          return AxisValue{std::string(e.as_boolean()->get() ? "true" : "false")};
        return AxisValue{get_choice(e, p, a.names)};
      });
    case AxisKind::Policy:
      return read_list(n, path, [&](const toml::node& e, const std::string& p) {
        const std::string text = get_string(e, p);
        try {
          return AxisValue{parse_cache_policy(text).spec()};
        } catch (const UsageError& err) {
          fail(line_of(e), fmt::format("{} = {}: {}", p, show(text), err.what()));
        }
      });
  }
  fail(line_of(n), fmt::format("{}: unknown axis kind", path));
}

// The npy directory's placeholders must be {n} or {sqrt_n}.
void Reader::check_input_dir(const InputSpec& in, const std::string& path, int line) const {
  if (in.kind != "npy") return;
  try {
    (void)spec_at(in.npy_dir, 1024);
  } catch (const UsageError& e) {
    fail(line, fmt::format("{}: directory {}: {}", path, show(in.npy_dir), e.what()));
  }
}

InputSpec Reader::read_inputs(const toml::node& n, const std::string& path) const {
  const std::string allowed =
      "\"random\", \"synthetic\", \"planted\", \"npy:DIR\" or a table {kind = \"npy\", dir = "
      "\"DIR\", "
      "tokens = \"first\" | \"last\"}";
  InputSpec in;
  if (const toml::table* t = n.as_table()) {
    for (auto&& [k, v] : *t)
      if (std::find(kInputsKeys.begin(), kInputsKeys.end(), k.str()) == kInputsKeys.end())
        unknown_key(k, path, kInputsKeys);
    const toml::node* kind = t->get("kind");
    if (!kind)
      fail(line_of(n), fmt::format("{} needs 'kind' (random, synthetic, planted or npy)", path));
    in.kind = get_choice(*kind, path + ".kind", {"random", "synthetic", "planted", "npy"});
    const toml::node* dir = t->get("dir");
    if (in.kind == "npy") {
      if (!dir)
        fail(line_of(n), fmt::format("{}: kind \"npy\" needs 'dir', the directory with "
                                     "q.npy, k.npy and v.npy",
                                     path));
      in.npy_dir = get_string(*dir, path + ".dir");
      if (in.npy_dir.empty())
        fail(line_of(*dir), fmt::format("{}.dir is empty: give the directory with q.npy, k.npy "
                                        "and v.npy",
                                        path));
      if (const toml::node* tokens = t->get("tokens"))
        in.tokens = get_choice(*tokens, path + ".tokens", {"first", "last"});
    } else {
      for (const char* key : {"dir", "tokens"})
        if (const toml::node* x = t->get(key))
          fail(line_of(*x), fmt::format("{}.{} is only allowed with kind = \"npy\" (kind is {})",
                                        path, key, show(in.kind)));
    }
    check_input_dir(in, path, line_of(n));
    return in;
  }
  if (!n.is_string())
    fail(line_of(n), fmt::format("{} must be {}, got {}", path, allowed, describe(n)));
  const std::string s = n.as_string()->get();
  if (s == "random" || s == "synthetic" || s == "planted") {
    in.kind = s;
  } else if (s.rfind("npy:", 0) == 0 && s.size() > 4) {
    in.kind = "npy";
    in.npy_dir = s.substr(4);
  } else {
    fail(line_of(n), fmt::format("{} = {} is not allowed: use {}", path, show(s), allowed));
  }
  check_input_dir(in, path, line_of(n));
  return in;
}

// The settings: each TOML key (top level and [quick]) and how it is read into Settings.
struct SettingDef {
  std::string_view name;
  void (*read)(const Reader& r, const toml::node& n, const std::string& path, Settings& s);
};

const std::vector<SettingDef>& setting_table() {
  using R = const Reader&;
  using N = const toml::node&;
  using P = const std::string&;
  static const std::vector<SettingDef> table = {
      {"repeats",
       [](R r, N n, P path, Settings& s) {
         s.repeats = static_cast<int>(r.get_int(n, path, 1, kMaxRepeats));
       }},
      {"warmup",
       [](R r, N n, P path, Settings& s) {
         s.warmup = static_cast<int>(r.get_int(n, path, 0, kMaxRepeats));
       }},
      {"timeout",
       [](R r, N n, P path, Settings& s) {
         s.timeout_seconds = r.get_number(n, path, 0, kMaxTimeoutSeconds);
       }},
      {"memory", [](R r, N n, P path, Settings& s) { s.memory_bytes = r.get_bytes(n, path); }},
      {"seed",
       [](R r, N n, P path, Settings& s) {
         s.seed = static_cast<std::uint64_t>(
             r.get_int(n, path, 0, std::numeric_limits<std::int64_t>::max()));
       }},
      {"check", [](R r, N n, P path, Settings& s) { s.check = r.get_bool(n, path); }},
      {"check_max_n",
       [](R r, N n, P path, Settings& s) { s.check_max_n = r.get_int(n, path, 1, kMaxTokens); }},
      {"fidelity", [](R r, N n, P path, Settings& s) { s.fidelity = r.get_bool(n, path); }},
      {"fidelity_max_n",
       [](R r, N n, P path, Settings& s) { s.fidelity_max_n = r.get_int(n, path, 1, kMaxTokens); }},
      {"inputs", [](R r, N n, P path, Settings& s) { s.inputs = r.read_inputs(n, path); }},
      {"predict_gflops",
       [](R r, N n, P path, Settings& s) {
         s.predict_gflops = r.get_number(n, path, 0, kMaxPredictGflops);
       }},
      {"fidelity_baseline",
       [](R r, N n, P path, Settings& s) {
         s.fidelity_baseline = r.get_string(n, path);
         r.check_spec(s.fidelity_baseline, line_of(n), path);
       }},
      {"scale",
       [](R r, N n, P path, Settings& s) { s.scale = r.get_number(n, path, 0, kMaxScale); }},
  };
  return table;
}

// The keys allowed in [quick]: the axes it may override, then the settings.
std::vector<std::string> quick_keys() {
  std::vector<std::string> keys;
  for (const AxisDef& a : axis_table())
    if (a.quick) keys.emplace_back(a.name);
  for (const SettingDef& d : setting_table()) keys.emplace_back(d.name);
  return keys;
}

// The keys allowed at the top level.
std::vector<std::string> top_keys() {
  std::vector<std::string> keys = {"name", "description", "plugins", "patterns"};
  for (const AxisDef& a : axis_table()) keys.emplace_back(a.name);
  for (const SettingDef& d : setting_table()) keys.emplace_back(d.name);
  keys.insert(keys.end(), {"quick", "report"});
  return keys;
}

bool Reader::apply(const std::string& key, const toml::node& n, const std::string& path, bool quick,
                   Grid& grid, Settings& s) const {
  for (std::size_t i = 0; i < axis_table().size(); ++i) {
    const AxisDef& a = axis_table()[i];
    if (a.name != key) continue;
    if (quick && !a.quick) return false;
    grid.values.at(i) = axis_values(a, n, path);
    grid.lines[i] = line_of(n);
    return true;
  }
  for (const SettingDef& d : setting_table())
    if (d.name == key) {
      d.read(*this, n, path, s);
      return true;
    }
  return false;
}

void Reader::read_plugins(const toml::node& n, Experiment& e) const {
  const toml::array* list = n.as_array();
  if (!list)
    fail(line_of(n), fmt::format("plugins must be a list of shared library paths (e.g. plugins = "
                                 "[\"build/libmypatterns.so\"]), got {}",
                                 describe(n)));
  const std::filesystem::path dir = std::filesystem::path(source_).parent_path();
  for (const toml::node& item : *list) {
    const std::string path = get_string(item, "plugins");
    if (path.empty()) fail(line_of(item), "plugins: an empty path is not a shared library");
    std::filesystem::path p(path);
    if (p.is_relative()) p = dir / p;
    std::error_code ec;
    const std::filesystem::path abs = std::filesystem::absolute(p, ec);
    e.plugins.push_back((ec ? p : abs).lexically_normal().string());
    if (&registry_ != &Registry::global()) continue;
    try {
      load_plugin(e.plugins.back());
    } catch (const UsageError& err) {
      fail(line_of(item), fmt::format("plugins: {} (relative paths are relative to the "
                                      "experiment file's directory)",
                                      err.what()));
    }
  }
}

// A spec (placeholders filled in for a 1024-token example) must parse.
void Reader::check_spec(const std::string& spec, int line, const std::string& path) const {
  try {
    (void)parse_spec(spec_at(spec, 1024), registry_);
  } catch (const SpecError& e) {
    fail(line, fmt::format("{} spec {} does not parse: {}", path, show(spec, 80), e.what()));
  } catch (const Error& e) {
    fail(line, fmt::format("{} spec {} is invalid: {}", path, show(spec, 80), e.what()));
  }
}

PatternEntry Reader::read_pattern(const toml::node& n, const std::string& path) const {
  PatternEntry p;
  p.line = line_of(n);
  bool named = false;
  if (n.is_string()) {
    p.spec = n.as_string()->get();
  } else if (const toml::table* t = n.as_table()) {
    for (auto&& [k, v] : *t)
      if (std::find(kPatternKeys.begin(), kPatternKeys.end(), k.str()) == kPatternKeys.end())
        unknown_key(k, path, kPatternKeys);
    const toml::node* spec = t->get("spec");
    if (!spec)
      fail(p.line, fmt::format("{} has no 'spec': give the pattern's spec string, e.g. {{name = "
                               "\"local\", spec = \"sliding(512)\"}}",
                               path));
    p.spec = get_string(*spec, path + ".spec");
    if (const toml::node* name = t->get("name")) {
      p.name = get_string(*name, path + ".name");
      named = true;
      std::size_t i = 0;
      while (i < p.name.size() && p.name[i] == ' ') ++i;
      if (i == p.name.size()) fail(line_of(*name), fmt::format("{}.name is empty", path));
      for (const char c : p.name)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
          fail(line_of(*name), fmt::format("{}.name {} contains a control character (tab, newline, "
                                           "...): names appear in tables and file names",
                                           path, show(p.name)));
      if (p.name.size() > kMaxDisplayNameLength)
        fail(line_of(*name), fmt::format("{}.name is {} characters long, more than the limit of {}",
                                         path, p.name.size(), kMaxDisplayNameLength));
    }
    if (const toml::node* m = t->get("max_n"))
      p.max_n = get_int(*m, path + ".max_n", 1, kMaxTokens, "omit it for no limit");
    if (const toml::node* m = t->get("min_n"))
      p.min_n = get_int(*m, path + ".min_n", 1, kMaxTokens, "omit it for no limit");
    if (p.min_n != 0 && p.max_n != 0 && p.min_n > p.max_n)
      fail(p.line, fmt::format("{}: min_n = {} is larger than max_n = {}: the pattern would run "
                               "at no seq_len",
                               path, p.min_n, p.max_n));
    if (const toml::node* b = t->get("block")) p.block = get_block(*b, path + ".block");
    if (const toml::node* f = t->get("fidelity_baseline")) {
      p.fidelity_baseline = get_string(*f, path + ".fidelity_baseline");
      check_spec(p.fidelity_baseline, line_of(*f), path + ".fidelity_baseline");
    }
  } else {
    fail(p.line, fmt::format("{} must be a spec string or a table {{name, spec, max_n, block}}, "
                             "got {}",
                             path, describe(n)));
  }
  check_spec(p.spec, p.line, path);
  if (!named) {
    // Default display name: the spec with each run of whitespace made one space.
    for (const char c : p.spec) {
      const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
      if (space) {
        if (!p.name.empty() && p.name.back() != ' ') p.name += ' ';
      } else {
        p.name += c;
      }
    }
    if (!p.name.empty() && p.name.back() == ' ') p.name.pop_back();
    if (p.name.size() > kMaxDisplayNameLength)
      fail(p.line, fmt::format("{}: the spec is {} characters long, too long to be the display "
                               "name (limit {}): give the entry a 'name'",
                               path, p.name.size(), kMaxDisplayNameLength));
  }
  return p;
}

std::vector<PatternEntry> Reader::read_patterns(const toml::node& n) const {
  std::vector<PatternEntry> out;
  if (const toml::array* a = n.as_array()) {
    if (a->empty()) fail(line_of(n), "patterns is an empty array: give at least one pattern");
    if (a->size() > kMaxPatterns)
      fail(line_of(n), fmt::format("patterns has {} entries, more than the limit of {}", a->size(),
                                   kMaxPatterns));
    for (std::size_t i = 0; i < a->size(); ++i)
      out.push_back(read_pattern(*a->get(i), fmt::format("patterns[{}]", i)));
  } else {
    out.push_back(read_pattern(n, "patterns"));
  }
  for (std::size_t i = 0; i < out.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (out[i].name == out[j].name)
        fail(out[i].line, fmt::format("patterns[{}] has the same name {} as patterns[{}] (line "
                                      "{}): give each entry a distinct 'name'",
                                      i, show(out[i].name), j, out[j].line));
  return out;
}

PublishedFigures Reader::read_published(const toml::node& n, const std::string& path,
                                        const Experiment& e) const {
  const toml::table* t = n.as_table();
  if (t == nullptr) fail(line_of(n), fmt::format("{} must be a table, got {}", path, describe(n)));
  for (auto&& [k, v] : *t)
    if (std::find(kPublishedKeys.begin(), kPublishedKeys.end(), k.str()) == kPublishedKeys.end())
      unknown_key(k, path, kPublishedKeys);
  auto need = [&](const char* key) -> const toml::node& {
    const toml::node* x = t->get(key);
    if (x == nullptr) fail(line_of(n), fmt::format("{} needs '{}'", path, key));
    return *x;
  };
  PublishedFigures p;
  const toml::node& pattern = need("pattern");
  p.pattern = get_string(pattern, path + ".pattern");
  std::vector<std::string> names;
  for (const PatternEntry& x : e.patterns) names.push_back(show(x.name));
  if (std::none_of(e.patterns.begin(), e.patterns.end(),
                   [&](const PatternEntry& x) { return x.name == p.pattern; }))
    fail(line_of(pattern), fmt::format("{}.pattern = {} names no pattern; the pattern names are {}",
                                       path, show(p.pattern), join(names)));
  p.source = get_string(need("source"), path + ".source");
  if (p.source.empty() || p.source.size() > 200)
    fail(line_of(n), fmt::format("{}.source must be 1..200 characters", path));
  p.quantity = get_choice(need("quantity"), path + ".quantity", kPublishedQuantities);
  const toml::node& values = need("values");
  const toml::array* va = values.as_array();
  if (va == nullptr || va->empty() || va->size() > 64)
    fail(line_of(values), fmt::format("{}.values must be an array of 1..64 numbers, got {}", path,
                                      describe(values)));
  for (std::size_t i = 0; i < va->size(); ++i)
    p.values.push_back(get_number(*va->get(i), fmt::format("{}.values[{}]", path, i), 0, 1e12));
  const toml::node* ns = t->get("n");
  if (p.quantity == "pairs_slope") {
    if (ns != nullptr)
      fail(line_of(*ns), fmt::format("{}.n is not used with quantity \"pairs_slope\" (one "
                                     "exponent for all N)",
                                     path));
    if (p.values.size() != 1)
      fail(line_of(values),
           fmt::format("{}.values must hold one exponent with quantity \"pairs_slope\", got {}",
                       path, p.values.size()));
    return p;
  }
  if (ns == nullptr) fail(line_of(n), fmt::format("{} needs 'n', the N of each value", path));
  const toml::array* na = ns->as_array();
  if (na == nullptr || na->size() != p.values.size())
    fail(line_of(*ns), fmt::format("{}.n must be an array of as many integers as values ({})", path,
                                   p.values.size()));
  for (std::size_t i = 0; i < na->size(); ++i) {
    p.n.push_back(get_int(*na->get(i), fmt::format("{}.n[{}]", path, i), 1, kMaxTokens));
    if (i > 0 && p.n[i] <= p.n[i - 1])
      fail(line_of(*na->get(i)),
           fmt::format("{}.n must be ascending: {} follows {}", path, p.n[i], p.n[i - 1]));
  }
  return p;
}

void Reader::read_report(const toml::table& t, Experiment& e, int line) const {
  for (auto&& [k, v] : t) {
    const std::string key(k.str());
    const std::string path = "report." + key;
    if (key == "layout") {
      e.report.layout = get_choice(v, path, report_layout_names());
    } else if (key == "baseline") {
      e.report.baseline = get_string(v, path);
      bool found = false;
      std::vector<std::string> names;
      for (const PatternEntry& p : e.patterns) {
        found = found || p.name == e.report.baseline;
        names.push_back(show(p.name));
      }
      if (!found)
        fail(line_of(v), fmt::format("report.baseline = {} names no pattern; the pattern names "
                                     "are {}",
                                     show(e.report.baseline), join(names)));
    } else if (key == "budget") {
      e.report.budget_bytes = get_bytes(v, path);
    } else if (key == "published") {
      const toml::array* a = v.as_array();
      if (a == nullptr || a->empty() || a->size() > 64)
        fail(line_of(v), fmt::format("{} must be an array of 1..64 tables ([[report.published]]), "
                                     "got {}",
                                     path, describe(v)));
      for (std::size_t i = 0; i < a->size(); ++i)
        e.report.published.push_back(read_published(*a->get(i), fmt::format("{}[{}]", path, i), e));
    } else {
      unknown_key(k, fmt::format("[report] (line {})", line), kReportKeys);
    }
  }
}

// Multiplies with saturation at kMaxPoints + 1 (counts only need to be compared with the limit).
std::int64_t sat_mul(std::int64_t a, std::int64_t b) {
  if (a == 0 || b == 0) return 0;
  if (a > (kMaxPoints + 1) / b) return kMaxPoints + 1;
  return std::min(a * b, kMaxPoints + 1);
}

std::int64_t count_points(const AxisValues& grid, const std::vector<PatternEntry>& patterns) {
  std::int64_t total = 0;
  for (const PatternEntry& p : patterns) {
    std::int64_t count = 1;
    for (std::size_t i = 0; i < axis_table().size(); ++i)
      count = sat_mul(count, static_cast<std::int64_t>(pattern_axis(p, grid, i).size()));
    total = std::min(total + count, kMaxPoints + 1);
  }
  return total;
}

void Reader::check_axes(const Grid& a, const std::vector<PatternEntry>& patterns,
                        std::string_view what, int line) const {
  const int kv_line = a.line("kv_heads");
  for (const std::int64_t h : a.values.ints("heads")) {
    std::map<std::int64_t, std::int64_t> resolved;  // kv heads -> the kv_heads value that gave it
    for (const std::int64_t kv : a.values.ints("kv_heads")) {
      const std::int64_t hkv = kv == 0 ? h : kv;
      if (h % hkv != 0)
        fail(kv_line,
             fmt::format("{}heads = {} is not a multiple of kv_heads = {}: every heads value must "
                         "be a multiple of every nonzero kv_heads value (grouped-query attention)",
                         what, h, kv));
      const auto [it, fresh] = resolved.emplace(hkv, kv);
      if (!fresh)
        fail(kv_line,
             fmt::format("{}kv_heads values {} and {} both mean {} K/V heads at heads = {} (0 "
                         "means equal to heads): the points would repeat",
                         what, it->second, kv, hkv, h));
    }
  }
  const std::int64_t total = count_points(a.values, patterns);
  std::string sizes = fmt::format("{} patterns", patterns.size());
  for (std::size_t i = 0; i < axis_table().size(); ++i)
    sizes += fmt::format(" x {} {}", a.values.at(i).size(), axis_table()[i].name);
  if (total > kMaxPoints)
    fail(line, fmt::format("{}the experiment expands to more than {} points ({}, less patterns' "
                           "max_n and block overrides): split it into several files",
                           what, kMaxPoints, sizes));
  if (total == 0)
    fail(line, fmt::format("{}the experiment expands to no point: every seq_len value exceeds "
                           "the max_n of every pattern",
                           what));
}

// Resolves every selector to a selection that keeps nothing (for the load-time checks).
class EmptySelection final : public SelectorResolver {
 public:
  PatternPtr resolve(const Selector& s, const std::vector<bool>&) const override {
    return std::make_shared<SelectedPattern>(s.spec(),
                                             std::vector<std::shared_ptr<const SelectedHead>>{});
  }
};

// Every pattern (and fidelity baseline) must accept every point it runs at: the geometry checks
// of build_layout (a per-head assignment for another head count, global tokens beyond N, a
// blocks() file of another size) fail here, at load, instead of as error points.
void Reader::check_patterns_fit(const Axes& a, const std::vector<PatternEntry>& patterns,
                                const Settings& s, std::string_view what) const {
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    const PatternEntry& entry = patterns[i];
    auto runs_at = [&](std::int64_t n) {
      return (entry.max_n == 0 || n <= entry.max_n) && n >= entry.min_n;
    };
    std::map<std::string, PatternPtr> parsed;  // by filled-in spec: blocks() reads a file
    // The first error at n (empty: fits every heads value).
    auto error_at = [&](std::int64_t n) -> std::string {
      std::vector<std::pair<std::string, std::string>> specs = {{"spec", entry.spec}};
      const std::string& baseline =
          entry.fidelity_baseline.empty() ? s.fidelity_baseline : entry.fidelity_baseline;
      if (s.fidelity && n <= s.fidelity_max_n && !baseline.empty())
        specs.emplace_back("fidelity baseline", baseline);
      for (const auto& [role, spec] : specs) {
        const int* head = nullptr;
        try {
          const std::string filled = spec_at(spec, n);
          PatternPtr& p = parsed[filled];
          if (!p) p = parse_spec(filled, registry_);
          // Selectors have no layout before their inputs: check the rest of the tree, with
          // each selector standing in as an empty selection.
          const PatternPtr checked =
              p->needs_inputs() ? resolve_selectors(p, EmptySelection{}, 1) : p;
          for (const int& h : a.heads.values) {
            head = &h;
            checked->check(Geometry{n, n, h, 64, 64});
          }
        } catch (const Error& err) {
          return fmt::format("{} {} at seq_len = {}{}: {}", role, show(spec, 80), n,
                             head ? fmt::format(", heads = {}", *head) : std::string(), err.what());
        }
      }
      return "";
    };
    for (const std::int64_t n : a.seq_len.values) {
      if (!runs_at(n)) continue;
      const std::string err = error_at(n);
      if (!err.empty()) fail(entry.line, fmt::format("{}patterns[{}]: {}", what, i, err));
    }
  }
}

Experiment Reader::read(const std::string& text) {
  if (text.size() > kMaxTextBytes)
    fail(0, fmt::format("the experiment file is {} bytes long, more than the limit of {} bytes",
                        text.size(), kMaxTextBytes));
  reject_unsafe_unicode(text, source_);
  toml::table root;
  try {
    root = toml::parse(text, source_);
  } catch (const toml::parse_error& err) {
    throw UsageError(fmt::format("{}:{}:{}: TOML syntax error: {}", source_,
                                 err.source().begin.line, err.source().begin.column,
                                 err.description()));
  }

  Experiment e;
  e.source_path = source_;
  e.source_text = text;
  Grid grid;
  const toml::table* quick = nullptr;
  const toml::table* report = nullptr;
  int report_line = 0;
  int patterns_line = 0;
  bool have_name = false, have_patterns = false;
  // Plugins first: the specs below may name their patterns (keys are not read in file order).
  if (const toml::node* plugins = root.get("plugins"); plugins && file_plugins_)
    read_plugins(*plugins, e);
  for (auto&& [k, v] : root) {
    const std::string key(k.str());
    if (key == "name") {
      e.name = get_string(v, "name");
      const bool chars_ok = std::all_of(e.name.begin(), e.name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
      });
      if (e.name.empty() || e.name.size() > kMaxNameLength || !chars_ok || e.name[0] == '.' ||
          e.name[0] == '-')
        fail(line_of(v), fmt::format("name = {} is not allowed: it names the results directory, "
                                     "so use 1..{} characters of A-Z a-z 0-9 _ . - not starting "
                                     "with . or -",
                                     show(e.name), kMaxNameLength));
      have_name = true;
    } else if (key == "description") {
      e.description = get_string(v, "description");
    } else if (key == "plugins") {
      // read above
    } else if (key == "patterns") {
      e.patterns = read_patterns(v);
      patterns_line = line_of(v);
      have_patterns = true;
    } else if (key == "quick") {
      quick = v.as_table();
      if (!quick)
        fail(line_of(v), fmt::format("quick must be a table ([quick]), got {}", describe(v)));
    } else if (key == "report") {
      report = v.as_table();
      if (!report)
        fail(line_of(v), fmt::format("report must be a table ([report]), got {}", describe(v)));
      report_line = line_of(v);
    } else if (!apply(key, v, key, false, grid, e.settings)) {
      unknown_key(k, "the top level", top_keys());
    }
  }
  if (!have_name)
    fail(0,
         "missing required key 'name' at the top level (e.g. name = \"scaling\"; it names the "
         "results directory)");
  if (!have_patterns)
    fail(0,
         "missing required key 'patterns' at the top level (e.g. patterns = [\"dense\", "
         "\"sliding(512)\"])");
  for (std::size_t i = 0; i < axis_table().size(); ++i) {
    const AxisDef& a = axis_table()[i];
    if (!grid.values.at(i).empty()) continue;  // given, or a default
    fail(0, a.kind == AxisKind::Length
                ? fmt::format("missing required key '{0}' at the top level (e.g. {0} = [1024, "
                              "2048] or {0} = {{from = 1024, to = 65536, factor = 2}})",
                              a.name)
                : fmt::format("missing required key '{}' at the top level", a.name));
  }
  const int seq_len_line = grid.line("seq_len");
  check_axes(grid, e.patterns, "", seq_len_line ? seq_len_line : patterns_line);
  check_patterns_fit(geometry_axes(grid), e.patterns, e.settings, "");

  Grid quick_grid = grid;
  e.quick_settings = e.settings;
  if (quick) {
    const int line = line_of(*quick);
    for (auto&& [k, v] : *quick)
      if (!apply(std::string(k.str()), v, fmt::format("quick.{}", k.str()), true, quick_grid,
                 e.quick_settings))
        unknown_key(k,
                    fmt::format("[quick] (line {}), which overrides axes other than patterns "
                                "and settings",
                                line),
                    quick_keys());
    check_axes(quick_grid, e.patterns, fmt::format("with [quick] (line {}) applied: ", line), line);
    check_patterns_fit(geometry_axes(quick_grid), e.patterns, e.quick_settings,
                       fmt::format("with [quick] (line {}) applied: ", line));
  }
  if (report) read_report(*report, e, report_line);

  e.axes = grid.values;
  e.quick_axes = quick_grid.values;
  return e;
}

// ---- point JSON ---------------------------------------------------------------------------------

[[noreturn]] void json_fail(const std::string& field, const std::string& what,
                            const nlohmann::json& got) {
  std::string shown = got.dump();
  if (shown.size() > 60) shown = shown.substr(0, 60) + "...";
  throw UsageError(fmt::format("point JSON: field '{}' {}, got {}", field, what, shown));
}

const nlohmann::json& json_field(const nlohmann::json& j, const std::string& parent,
                                 const char* name) {
  const std::string field = parent.empty() ? name : parent + "." + name;
  if (!j.is_object()) json_fail(parent.empty() ? "(top)" : parent, "must be an object", j);
  const auto it = j.find(name);
  if (it == j.end()) throw UsageError(fmt::format("point JSON: field '{}' is missing", field));
  return *it;
}

std::int64_t json_int(const nlohmann::json& j, const std::string& parent, const char* name,
                      std::int64_t lo, std::int64_t hi) {
  const nlohmann::json& v = json_field(j, parent, name);
  const std::string field = parent.empty() ? name : parent + "." + name;
  const std::string what = fmt::format("must be an integer {}..{}", lo, hi);
  if (v.is_number_unsigned()) {
    const std::uint64_t u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi)) json_fail(field, what, v);
    return static_cast<std::int64_t>(u);
  }
  if (!v.is_number_integer()) json_fail(field, what, v);
  const std::int64_t x = v.get<std::int64_t>();
  if (x < lo || x > hi) json_fail(field, what, v);
  return x;
}

double json_number(const nlohmann::json& j, const std::string& parent, const char* name,
                   double lo_exclusive, double hi) {
  const nlohmann::json& v = json_field(j, parent, name);
  const std::string field = parent + "." + name;
  const std::string what = fmt::format("must be a number > {} and <= {}", lo_exclusive, hi);
  if (!v.is_number()) json_fail(field, what, v);
  const double x = v.get<double>();
  if (!(x > lo_exclusive && x <= hi)) json_fail(field, what, v);
  return x;
}

std::string json_string(const nlohmann::json& j, const std::string& parent, const char* name) {
  const nlohmann::json& v = json_field(j, parent, name);
  if (!v.is_string()) json_fail(parent.empty() ? name : parent + "." + name, "must be a string", v);
  return v.get<std::string>();
}

bool json_bool(const nlohmann::json& j, const std::string& parent, const char* name) {
  const nlohmann::json& v = json_field(j, parent, name);
  if (!v.is_boolean()) json_fail(parent + "." + name, "must be true or false", v);
  return v.get<bool>();
}

// The value of axis `a` in point JSON, checked against its row of axis_table().
AxisValue json_axis_value(const nlohmann::json& j, const AxisDef& a) {
  const std::string field(a.field);
  switch (a.kind) {
    case AxisKind::Int:
    case AxisKind::Length:
      return json_int(j, "", field.c_str(), a.lo, a.hi);
    case AxisKind::Block: {
      const nlohmann::json& v = json_field(j, "", field.c_str());
      if (!v.is_number_integer() || v.get<std::int64_t>() < 16 || v.get<std::int64_t>() > 128 ||
          !is_valid_block_size(v.get<int>()))
        json_fail(field, "must be 16, 32, 64 or 128", v);
      return v.get<std::int64_t>();
    }
    case AxisKind::Name: {
      const std::string v = json_string(j, "", field.c_str());
      if (std::find(a.names.begin(), a.names.end(), v) == a.names.end())
        json_fail(field, fmt::format("must be one of {}", join(a.names)), j[field]);
      return v;
    }
    case AxisKind::Policy: {
      const std::string v = json_string(j, "", field.c_str());
      try {
        return parse_cache_policy(v).spec();
      } catch (const UsageError& e) {
        json_fail(field, e.what(), j[field]);
      }
    }
  }
  json_fail(field, "has an unknown axis kind", j);
}

}  // namespace

Experiment parse_experiment(const std::string& text, const std::string& source_name,
                            const Registry& registry) {
  return Reader(source_name, registry).read(text);
}

Experiment parse_experiment(const std::string& text, const std::string& source_name) {
  return parse_experiment(text, source_name, Registry::global());
}

Experiment parse_recorded_experiment(const std::string& text, const std::string& source_name) {
  return Reader(source_name, Registry::global(), false).read(text);
}

Experiment load_experiment(const std::filesystem::path& path) {
  std::int64_t size = 0;
  std::ifstream in = open_regular_file(path.string(), "an experiment file (TOML)", size);
  if (size > static_cast<std::int64_t>(kMaxTextBytes))
    throw UsageError(
        fmt::format("experiment file {} is {} bytes long, more than the limit of {} "
                    "bytes",
                    path.string(), size, kMaxTextBytes));
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof())
    throw UsageError(fmt::format("cannot read experiment file {}", path.string()));
  Experiment e = parse_experiment(text.str(), path.string());
  e.source_path = path;
  // A relative npy directory means: next to the experiment file, wherever the sweep runs from.
  std::error_code ec;
  for (Settings* s : {&e.settings, &e.quick_settings})
    if (s->inputs.kind == "npy" && std::filesystem::path(s->inputs.npy_dir).is_relative()) {
      const std::filesystem::path joined = path.parent_path() / s->inputs.npy_dir;
      const std::filesystem::path abs = std::filesystem::absolute(joined, ec);
      s->inputs.npy_dir = (ec ? joined : abs).lexically_normal().string();
    }
  return e;
}

nlohmann::json published_to_json(const std::vector<PublishedFigures>& p) {
  nlohmann::json out = nlohmann::json::array();
  for (const PublishedFigures& f : p)
    out.push_back({{"pattern", f.pattern},
                   {"source", f.source},
                   {"quantity", f.quantity},
                   {"n", f.n},
                   {"values", f.values}});
  return out;
}

std::vector<PublishedFigures> published_from_json(const nlohmann::json& j,
                                                  const std::string& where) {
  auto bad = [&](const std::string& field, const std::string& what) {
    throw UsageError(fmt::format("{}: report.published{} must be {}", where, field, what));
  };
  if (!j.is_array()) bad("", "an array");
  std::vector<PublishedFigures> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& e = j[i];
    const std::string at = fmt::format("[{}]", i);
    if (!e.is_object()) bad(at, "an object");
    PublishedFigures f;
    for (auto [key, field] : {std::pair{"pattern", &f.pattern}, std::pair{"source", &f.source},
                              std::pair{"quantity", &f.quantity}}) {
      if (!e.contains(key) || !e[key].is_string()) bad(at + "." + key, "a string");
      *field = e[key].get<std::string>();
    }
    if (std::find(kPublishedQuantities.begin(), kPublishedQuantities.end(), f.quantity) ==
        kPublishedQuantities.end())
      bad(at + ".quantity", "one of " + join(kPublishedQuantities));
    if (!e.contains("values") || !e["values"].is_array() || e["values"].empty())
      bad(at + ".values", "a non-empty array of numbers");
    for (const nlohmann::json& v : e["values"]) {
      if (!v.is_number() || !(v.get<double>() > 0)) bad(at + ".values", "numbers > 0");
      f.values.push_back(v.get<double>());
    }
    if (!e.contains("n") || !e["n"].is_array()) bad(at + ".n", "an array of integers");
    for (const nlohmann::json& v : e["n"]) {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 1) bad(at + ".n", "integers >= 1");
      f.n.push_back(v.get<std::int64_t>());
    }
    if (f.quantity == "pairs_slope" ? (f.values.size() != 1 || !f.n.empty())
                                    : f.n.size() != f.values.size())
      bad(at + ".n", "one N per value (none, and one value, for pairs_slope)");
    out.push_back(std::move(f));
  }
  return out;
}

std::string InputSpec::name() const {
  if (kind != "npy") return kind;
  return "npy:" + npy_dir + (tokens == "last" ? " (last tokens)" : "");
}

std::string point_key(const SweepPoint& p) {
  // The axes of the first key format, then the inputs, then any later axis off its default: old
  // keys stay byte-identical.
  std::string key = "pattern=" + p.pattern.name, later;
  for (const AxisDef& a : axis_table()) {
    const AxisValue v = a.get(p);
    const std::string part = fmt::format(";{}={}", a.key, axis_value_text(v));
    if (a.always_in_key)
      key += part;
    else if (!a.default_value || v != *a.default_value)
      later += part;
  }
  // Geometry that only `spattn run` sets (sweeps have nq = nk and square tiles).
  if (p.nk != 0 && p.nk != p.n) later += fmt::format(";nk={}", p.nk);
  if (p.block_k != 0 && p.block_k != p.block) later += fmt::format(";block_k={}", p.block_k);
  return key + ";inputs=" + p.settings.inputs.name() + later;
}

std::vector<std::string> run_plugins(const Experiment& e) {
  std::vector<std::string> plugins = loaded_plugins();
  for (const std::string& path : e.plugins)
    if (std::find(plugins.begin(), plugins.end(), path) == plugins.end()) plugins.push_back(path);
  return plugins;
}

std::vector<SweepPoint> expand_points(const Experiment& e, bool quick) {
  const AxisValues& grid = quick ? e.quick_axes : e.axes;
  const Settings& settings = quick ? e.quick_settings : e.settings;
  const std::vector<AxisDef>& table = axis_table();

  const std::vector<std::string> plugins = run_plugins(e);
  std::vector<SweepPoint> points;
  std::set<std::string> keys;
  for (const PatternEntry& pattern : e.patterns) {
    std::vector<std::vector<AxisValue>> lists;
    bool empty = false;
    for (std::size_t i = 0; i < table.size(); ++i) {
      lists.push_back(pattern_axis(pattern, grid, i));
      empty = empty || lists.back().empty();
    }
    if (empty) continue;
    // Every combination, the last axis varying fastest: at[i] indexes lists[i].
    std::vector<std::size_t> at(table.size(), 0);
    for (std::size_t i = table.size(); i > 0;) {
      if (points.size() >= static_cast<std::size_t>(kMaxPoints))
        throw UsageError(
            fmt::format("experiment {} expands to more than {} points: split it into several files",
                        e.name, kMaxPoints));
      SweepPoint p;
      p.index = static_cast<int>(points.size());
      for (std::size_t k = 0; k < table.size(); ++k) table[k].set(p, lists[k][at[k]]);
      p.pattern = pattern;
      p.pattern.spec = spec_at(pattern.spec, p.n);
      p.pattern.fidelity_baseline = spec_at(pattern.fidelity_baseline, p.n);
      p.settings = settings;
      p.scale = settings.scale;
      p.settings.fidelity_baseline = spec_at(settings.fidelity_baseline, p.n);
      p.plugins = plugins;
      p.key = point_key(p);
      // Only hand-built Experiments get here (the loader rejects repeats).
      if (!keys.insert(p.key).second)
        throw UsageError(
            fmt::format("experiment {}: two points have the same key {}: axis values and pattern "
                        "names must be distinct",
                        e.name, p.key));
      points.push_back(std::move(p));
      for (i = table.size(); i > 0 && ++at[i - 1] == lists[i - 1].size(); --i) at[i - 1] = 0;
    }
  }
  return points;
}

std::int64_t memory_limit(const Settings& s) {
  return s.memory_bytes > 0 ? s.memory_bytes : default_memory_budget();
}

std::string spec_at(const std::string& spec, std::int64_t n) {
  std::string out;
  std::size_t i = 0;
  while (i < spec.size()) {
    const std::size_t open = spec.find('{', i);
    if (open == std::string::npos) {
      out.append(spec, i, std::string::npos);
      break;
    }
    out.append(spec, i, open - i);
    const std::size_t close = spec.find('}', open);
    const std::string name =
        spec.substr(open + 1, close == std::string::npos ? std::string::npos : close - open - 1);
    if (close == std::string::npos || (name != "n" && name != "sqrt_n"))
      throw UsageError(fmt::format(
          "spec {}: column {}: unknown placeholder '{{{}': allowed are {{n}} (the seq_len) and "
          "{{sqrt_n}} (its square root, rounded), optionally followed by /K or *K",
          show(spec, 80), open + 1, close == std::string::npos ? name : name + "}"));
    std::int64_t v =
        name == "n" ? n
                    : static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    i = close + 1;
    // {n}/K (floor division) or {n}*K, K a positive decimal integer.
    if (i + 1 < spec.size() && (spec[i] == '/' || spec[i] == '*') &&
        std::isdigit(static_cast<unsigned char>(spec[i + 1]))) {
      const char op = spec[i];
      std::size_t end = i + 1;
      while (end < spec.size() && std::isdigit(static_cast<unsigned char>(spec[end]))) ++end;
      std::int64_t k = 0;
      const auto [ptr, ec] = std::from_chars(spec.data() + i + 1, spec.data() + end, k);
      (void)ptr;
      const bool overflow = ec != std::errc() || k == 0 ||
                            (op == '*' && v > std::numeric_limits<std::int64_t>::max() / k);
      if (overflow)
        throw UsageError(fmt::format(
            "spec {}: column {}: '{{{}}}{}{}' is not allowed: K in {{{}}}/K and {{{}}}*K must be "
            "an integer >= 1 (and the product below 2^63)",
            show(spec, 80), i + 1, name, op, spec.substr(i + 1, end - i - 1), name, name));
      v = op == '/' ? v / k : v * k;
      i = end;
    }
    out += std::to_string(v);
  }
  return out;
}

nlohmann::json point_to_json(const SweepPoint& p) {
  const Settings& s = p.settings;
  nlohmann::json j{
      {"index", p.index},
      {"key", p.key},
      {"pattern",
       {{"name", p.pattern.name},
        {"spec", p.pattern.spec},
        {"max_n", p.pattern.max_n},
        {"min_n", p.pattern.min_n},
        {"block", p.pattern.block},
        {"fidelity_baseline", p.pattern.fidelity_baseline},
        {"line", p.pattern.line}}},
      {"nk", p.nk},
      {"block_k", p.block_k},
      {"settings",
       {{"repeats", s.repeats},
        {"warmup", s.warmup},
        {"timeout_seconds", s.timeout_seconds},
        {"memory_bytes", s.memory_bytes},
        {"seed", s.seed},
        {"check", s.check},
        {"check_max_n", s.check_max_n},
        {"fidelity", s.fidelity},
        {"fidelity_max_n", s.fidelity_max_n},
        {"fidelity_baseline", s.fidelity_baseline},
        {"inputs",
         {{"kind", s.inputs.kind}, {"npy_dir", s.inputs.npy_dir}, {"tokens", s.inputs.tokens}}},
        {"predict_gflops", s.predict_gflops},
        {"scale", s.scale ? nlohmann::json(*s.scale) : nlohmann::json(nullptr)}}}};
  for (const AxisDef& a : axis_table())
    std::visit([&](const auto& v) { j[std::string(a.field)] = v; }, a.get(p));
  if (!p.plugins.empty()) j["plugins"] = p.plugins;
  return j;
}

SweepPoint point_from_json(const nlohmann::json& j) {
  SweepPoint p;
  constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
  p.index = static_cast<int>(json_int(j, "", "index", 0, kIntMax));
  p.key = json_string(j, "", "key");
  const nlohmann::json& pat = json_field(j, "", "pattern");
  p.pattern.name = json_string(pat, "pattern", "name");
  p.pattern.spec = json_string(pat, "pattern", "spec");
  if (p.pattern.spec.empty()) json_fail("pattern.spec", "must be a non-empty spec", pat["spec"]);
  p.pattern.max_n = json_int(pat, "pattern", "max_n", 0, kMaxTokens);
  p.pattern.min_n = json_int(pat, "pattern", "min_n", 0, kMaxTokens);
  p.pattern.fidelity_baseline = json_string(pat, "pattern", "fidelity_baseline");
  p.pattern.block = static_cast<int>(json_int(pat, "pattern", "block", 0, 128));
  if (p.pattern.block != 0 && !is_valid_block_size(p.pattern.block))
    json_fail("pattern.block", "must be 0, 16, 32, 64 or 128", pat["block"]);
  p.pattern.line = static_cast<int>(json_int(pat, "pattern", "line", 0, kIntMax));
  for (const AxisDef& a : axis_table()) a.set(p, json_axis_value(j, a));
  if (p.heads % p.kv_heads != 0)
    throw UsageError(fmt::format("point JSON: heads = {} is not a multiple of kv_heads = {}",
                                 p.heads, p.kv_heads));
  p.nk = json_int(j, "", "nk", 0, kMaxTokens);
  p.block_k = static_cast<int>(json_int(j, "", "block_k", 0, 128));
  if (p.block_k != 0 && !is_valid_block_size(p.block_k))
    json_fail("block_k", "must be 0, 16, 32, 64 or 128", j["block_k"]);
  const nlohmann::json& s = json_field(j, "", "settings");
  Settings& t = p.settings;
  t.repeats = static_cast<int>(json_int(s, "settings", "repeats", 1, kMaxRepeats));
  t.warmup = static_cast<int>(json_int(s, "settings", "warmup", 0, kMaxRepeats));
  t.timeout_seconds = json_number(s, "settings", "timeout_seconds", 0, kMaxTimeoutSeconds);
  t.memory_bytes = json_int(s, "settings", "memory_bytes", 0, kMaxBytes);
  const nlohmann::json& seed = json_field(s, "settings", "seed");
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<std::int64_t>() >= 0))
    json_fail("settings.seed", "must be an integer >= 0", seed);
  t.seed = seed.get<std::uint64_t>();
  t.check = json_bool(s, "settings", "check");
  t.check_max_n = json_int(s, "settings", "check_max_n", 1, kMaxTokens);
  t.fidelity = json_bool(s, "settings", "fidelity");
  t.fidelity_max_n = json_int(s, "settings", "fidelity_max_n", 1, kMaxTokens);
  t.fidelity_baseline = json_string(s, "settings", "fidelity_baseline");
  if (t.fidelity_baseline.empty())
    json_fail("settings.fidelity_baseline", "must be a non-empty spec", s["fidelity_baseline"]);
  const nlohmann::json& in = json_field(s, "settings", "inputs");
  t.inputs.kind = json_string(in, "settings.inputs", "kind");
  t.inputs.npy_dir = json_string(in, "settings.inputs", "npy_dir");
  if (t.inputs.kind != "random" && t.inputs.kind != "synthetic" && t.inputs.kind != "planted" &&
      t.inputs.kind != "npy")
    json_fail("settings.inputs.kind", "must be \"random\", \"synthetic\", \"planted\" or \"npy\"",
              in["kind"]);
  if ((t.inputs.kind == "npy") == t.inputs.npy_dir.empty())
    json_fail("settings.inputs.npy_dir", "must be set exactly when kind is \"npy\"", in["npy_dir"]);
  if (in.contains("tokens")) {  // points written before it existed read as "first"
    t.inputs.tokens = json_string(in, "settings.inputs", "tokens");
    if (t.inputs.tokens != "first" && t.inputs.tokens != "last")
      json_fail("settings.inputs.tokens", "must be \"first\" or \"last\"", in["tokens"]);
  }
  t.predict_gflops = json_number(s, "settings", "predict_gflops", 0, kMaxPredictGflops);
  if (s.contains("scale") && !s["scale"].is_null())  // absent in points written before it
    t.scale = json_number(s, "settings", "scale", 0, kMaxScale);
  p.scale = t.scale;
  if (j.contains("plugins")) {  // optional: absent when none
    const nlohmann::json& list = j["plugins"];
    if (!list.is_array()) json_fail("plugins", "must be a list of paths", list);
    for (const nlohmann::json& item : list) {
      if (!item.is_string() || item.get<std::string>().empty())
        json_fail("plugins", "must hold non-empty path strings", item);
      p.plugins.push_back(item.get<std::string>());
    }
  }
  return p;
}

}  // namespace spattn::experiments
