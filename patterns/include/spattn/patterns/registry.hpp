#pragma once
// The pattern registry: name -> factory taking named, typed, validated parameters.
// A pattern registered here is usable at once from spec strings, the CLI and sweeps.
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "spattn/patterns/pattern.hpp"

namespace spattn {

// Real: a decimal number such as 0.9 (selector thresholds and fractions).
enum class ParamType { Int, IntList, String, Real };
using ParamValue = std::variant<std::int64_t, std::vector<std::int64_t>, std::string, double>;

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::Int;
  // Missing, not required, no default: the factory sees !args.has(name) (e.g. window's `right`).
  bool required = false;
  std::optional<ParamValue> default_value;
  // Inclusive bounds for Int values and for every IntList element.
  std::int64_t min = std::numeric_limits<std::int64_t>::min();
  std::int64_t max = std::numeric_limits<std::int64_t>::max();
  std::size_t max_list_size = 1 << 20;
  // Inclusive bounds for Real values (real_min_open: the lower bound itself is refused).
  double real_min = -std::numeric_limits<double>::infinity();
  double real_max = std::numeric_limits<double>::infinity();
  bool real_min_open = false;
  // String values the parameter accepts (empty: any). Spec strings may write them unquoted.
  std::vector<std::string> choices;
  // An Int in 0..1 that spec strings may also write as false/true (printed 0/1).
  bool boolean = false;
  std::string doc;
};

std::string to_string(const ParamValue& v);
const char* type_name(ParamType t);

// Validated arguments handed to a factory: every name is a declared parameter, types and bounds
// are checked, defaults filled in.
class Args {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::int64_t get_int(const std::string& name) const;
  const std::vector<std::int64_t>& get_list(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  double get_real(const std::string& name) const;
  void set(const std::string& name, ParamValue v) { values_[name] = std::move(v); }

 private:
  const ParamValue& at(const std::string& name) const;
  std::map<std::string, ParamValue> values_;
};

struct PatternInfo {
  std::string name;
  std::vector<ParamSpec> params;                // positional arguments bind in this order
  std::string summary;                          // one line
  std::string rule;                             // the exact rule, in terms of p(i) and j
  std::string convention;                       // which system's convention it matches (source)
  std::string example;                          // an example spec
  std::function<PatternPtr(const Args&)> make;  // may throw UsageError for cross-field checks
};

class Registry {
 public:
  // The process-wide registry holding every built-in pattern.
  static Registry& global();

  // Throws UsageError if the name is taken or not an identifier. `origin` says where the pattern
  // comes from: "" for built-ins and patterns added in code, a plugin's path for its patterns.
  void add(PatternInfo info, std::string origin = "");
  const PatternInfo* find(const std::string& name) const;
  // The origin given to add() ("" when none, or when `name` is not registered).
  const std::string& origin(const std::string& name) const;
  // Registered names closest to `name` (edit distance), best first, at most `k`.
  std::vector<std::string> suggest(const std::string& name, std::size_t k = 3) const;
  std::vector<const PatternInfo*> all() const;

 private:
  std::map<std::string, PatternInfo> patterns_;
  std::map<std::string, std::string> origins_;
};

// Adds every built-in pattern to `r` (called once by Registry::global()).
void register_builtins(Registry& r);

}  // namespace spattn
