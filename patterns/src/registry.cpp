#include "spattn/patterns/registry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "spattn/patterns/edit_distance.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {

std::string to_string(const ParamValue& v) {
  if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto* l = std::get_if<std::vector<std::int64_t>>(&v))
    return fmt::format("[{}]", fmt::join(*l, ", "));
  if (auto* d = std::get_if<double>(&v)) {
    // Shortest text that reads back to the same double, always with a '.' (0.9, 1.0).
    std::string t = fmt::format("{}", *d);
    if (t.find_first_of(".e") == std::string::npos) t += ".0";
    return t;
  }
  std::string s = "\"";
  for (char c : std::get<std::string>(v)) {
    if (c == '"' || c == '\\') s += '\\';
    s += c;
  }
  return s + "\"";
}

const char* type_name(ParamType t) {
  switch (t) {
    case ParamType::Int:
      return "integer";
    case ParamType::IntList:
      return "integer list";
    case ParamType::String:
      return "string";
    case ParamType::Real:
      return "decimal";
  }
  return "?";
}

const ParamValue& Args::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw UsageError(fmt::format("missing argument '{}'", name));
  return it->second;
}
std::int64_t Args::get_int(const std::string& name) const {
  return std::get<std::int64_t>(at(name));
}
const std::vector<std::int64_t>& Args::get_list(const std::string& name) const {
  return std::get<std::vector<std::int64_t>>(at(name));
}
const std::string& Args::get_string(const std::string& name) const {
  return std::get<std::string>(at(name));
}

double Args::get_real(const std::string& name) const {
  const ParamValue& v = at(name);
  if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return std::get<double>(v);
}

Registry& Registry::global() {
  static Registry* r = [] {
    auto* reg = new Registry;
    register_builtins(*reg);
    return reg;
  }();
  return *r;
}

void Registry::add(PatternInfo info, std::string origin) {
  const bool ident =
      !info.name.empty() &&
      (std::isalpha(static_cast<unsigned char>(info.name[0])) || info.name[0] == '_') &&
      std::all_of(info.name.begin(), info.name.end(),
                  [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
  if (!ident)
    throw UsageError(
        fmt::format("pattern name '{}' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)", info.name));
  if (info.name == "heads")
    throw UsageError("pattern name 'heads' is reserved for per-head assignment");
  if (patterns_.count(info.name))
    throw UsageError(fmt::format("pattern '{}' is already registered", info.name));
  if (!info.make) throw UsageError(fmt::format("pattern '{}' has no factory", info.name));
  const std::string name = info.name;
  patterns_.emplace(name, std::move(info));
  if (!origin.empty()) origins_.emplace(name, std::move(origin));
}

const std::string& Registry::origin(const std::string& name) const {
  static const std::string none;
  auto it = origins_.find(name);
  return it == origins_.end() ? none : it->second;
}

const PatternInfo* Registry::find(const std::string& name) const {
  auto it = patterns_.find(name);
  return it == patterns_.end() ? nullptr : &it->second;
}

namespace {
std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

std::vector<std::string> Registry::suggest(const std::string& name, std::size_t k) const {
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const auto& [n, info] : patterns_) {
    std::size_t d = edit_distance(lowered(name), lowered(n));
    // A registered name that starts with (or is contained in) the input is a near miss too.
    if (n.find(name) != std::string::npos || name.find(n) != std::string::npos)
      d = std::min<std::size_t>(d, 1);
    scored.emplace_back(d, n);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  const std::size_t limit = std::max<std::size_t>(2, name.size() / 2);
  for (const auto& [d, n] : scored) {
    if (out.size() == k) break;
    if (d <= limit) out.push_back(n);
  }
  return out;
}

std::vector<const PatternInfo*> Registry::all() const {
  std::vector<const PatternInfo*> out;
  for (const auto& [n, info] : patterns_) out.push_back(&info);
  return out;
}

}  // namespace spattn
