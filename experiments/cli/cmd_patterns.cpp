// spattn patterns [--json]: the catalogue of registered patterns and the combinator syntax.
#include <fmt/format.h>

#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "spattn/patterns/registry.hpp"

namespace spattn::cli {
namespace {

constexpr const char* kPositions =
    "query i sits at position p(i) = i + (nk - nq) (bottom-right alignment; p(i) = i when "
    "nq = nk); keys j are 0..nk-1";

struct CombinatorDoc {
  const char* syntax;
  const char* meaning;
};
constexpr CombinatorDoc kCombinators[] = {
    {"a | b", "union: allowed when either allows"},
    {"a & b", "intersection: allowed when both allow"},
    {"a - b", "difference: allowed when a allows and b does not"},
    {"( ... )", "grouping"},
    {"heads(0..3: A; 4..7: B)",
     "per-head assignment: head h uses the pattern of the group listing it; groups list heads "
     "as ranges 'first..last' or single heads separated by ','; every head must be listed "
     "exactly once"},
};
constexpr const char* kPrecedence =
    "'-' binds tightest (left-associative), then '&', then '|' (the precedence of Python's set "
    "operators): a | b - c & d is a | ((b - c) & d)";
constexpr const char* kLengths =
    "a window, stride, chunk, block, sink or prefix may be longer than the sequence; the rule "
    "then covers every key it can (sliding(4096) at nk = 1000 is causal)";
constexpr const char* kArguments =
    "arguments bind by position in the order listed, or by name (name=value); values are "
    "integers, decimals (0.9), booleans (true, false, 1 or 0), lists [1, 2, 3] or strings \"...\" "
    "(a parameter with fixed choices takes them bare: mode=pit64)";

bool has_min(const ParamSpec& p) {
  return p.min != std::numeric_limits<std::int64_t>::min();
}
bool has_max(const ParamSpec& p) {
  return p.max != std::numeric_limits<std::int64_t>::max();
}

std::string bounds_text(const ParamSpec& p) {
  if (p.type == ParamType::Real)
    return fmt::format("{}{}..{}]", p.real_min_open ? "(" : "[", p.real_min, p.real_max);
  if (!p.choices.empty()) return fmt::format("one of {}", fmt::join(p.choices, ", "));
  std::string b;
  if (has_min(p) && has_max(p))
    b = fmt::format("{}..{}", p.min, p.max);
  else if (has_min(p))
    b = fmt::format(">= {}", p.min);
  else if (has_max(p))
    b = fmt::format("<= {}", p.max);
  if (p.type == ParamType::IntList) {
    const std::string items = fmt::format("at most {} items", p.max_list_size);
    return b.empty() ? items : fmt::format("elements {}, {}", b, items);
  }
  return b;
}

// "name(a, b=64, c?)": required parameters bare, defaults shown, optional ones marked '?'.
std::string signature(const PatternInfo& info) {
  if (info.params.empty()) return info.name;
  std::vector<std::string> parts;
  for (const ParamSpec& p : info.params) {
    if (p.default_value)
      parts.push_back(fmt::format("{}={}", p.name, to_string(*p.default_value)));
    else if (p.required)
      parts.push_back(p.name);
    else
      parts.push_back(p.name + "?");
  }
  return fmt::format("{}({})", info.name, fmt::join(parts, ", "));
}

nlohmann::ordered_json value_json(const ParamValue& v) {
  if (auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (auto* l = std::get_if<std::vector<std::int64_t>>(&v)) return *l;
  if (auto* d = std::get_if<double>(&v)) return *d;
  return std::get<std::string>(v);
}

void print_text(const Registry& registry) {
  std::string out = fmt::format("Positions: {}.\nLengths: {}.\nArguments: {}.\n\nPatterns:\n\n",
                                kPositions, kLengths, kArguments);
  for (const PatternInfo* info : registry.all()) {
    out += fmt::format("{}\n  {}\n", signature(*info), info->summary);
    out += fmt::format("  rule:        {}\n", info->rule);
    out += fmt::format("  convention:  {}\n", info->convention);
    out += fmt::format("  example:     {}\n", info->example);
    if (const std::string& origin = registry.origin(info->name); !origin.empty())
      out += fmt::format("  plugin:      {}\n", origin);
    if (!info->params.empty()) out += "  parameters:\n";
    for (const ParamSpec& p : info->params) {
      std::vector<std::string> facts = {p.boolean ? "boolean" : type_name(p.type)};
      if (p.default_value)
        facts.push_back(fmt::format("default {}", to_string(*p.default_value)));
      else
        facts.push_back(p.required ? "required" : "optional");
      if (const std::string b = bounds_text(p); !b.empty() && !p.boolean) facts.push_back(b);
      out += fmt::format("    {:<8} {}: {}\n", p.name, fmt::join(facts, ", "), p.doc);
    }
    out += "\n";
  }
  out += "Combinators:\n";
  for (const CombinatorDoc& c : kCombinators)
    out += fmt::format("  {:<25} {}\n", c.syntax, c.meaning);
  out += fmt::format("Precedence: {}.\n", kPrecedence);
  out += "Example: heads(0..3: sliding(1024) | sink(4); 4..7: causal)\n";
  std::cout << out;
}

void print_json(const Registry& registry) {
  nlohmann::ordered_json patterns = nlohmann::ordered_json::array();
  for (const PatternInfo* info : registry.all()) {
    nlohmann::ordered_json params = nlohmann::ordered_json::array();
    for (const ParamSpec& p : info->params) {
      nlohmann::ordered_json j = {
          {"name", p.name},
          {"type", type_name(p.type)},
          {"required", p.required},
          {"default", p.default_value ? value_json(*p.default_value) : nullptr},
          {"min", has_min(p) ? nlohmann::ordered_json(p.min) : nullptr},
          {"max", has_max(p) ? nlohmann::ordered_json(p.max) : nullptr},
          {"doc", p.doc}};
      if (p.type == ParamType::IntList) j["max_list_size"] = p.max_list_size;
      if (p.type == ParamType::Real) {
        j["min"] = p.real_min;
        j["max"] = p.real_max;
        j["min_open"] = p.real_min_open;
      }
      if (!p.choices.empty()) j["choices"] = p.choices;
      if (p.boolean) j["boolean"] = true;  // an integer 0..1 that may be written false/true
      params.push_back(std::move(j));
    }
    patterns.push_back({{"name", info->name},
                        {"signature", signature(*info)},
                        {"summary", info->summary},
                        {"rule", info->rule},
                        {"convention", info->convention},
                        {"example", info->example},
                        {"plugin", registry.origin(info->name).empty()
                                       ? nlohmann::ordered_json(nullptr)
                                       : nlohmann::ordered_json(registry.origin(info->name))},
                        {"params", std::move(params)}});
  }
  nlohmann::ordered_json combinators = nlohmann::ordered_json::array();
  for (const CombinatorDoc& c : kCombinators)
    combinators.push_back({{"syntax", c.syntax}, {"meaning", c.meaning}});
  const nlohmann::ordered_json out = {{"positions", kPositions},
                                      {"lengths", kLengths},
                                      {"arguments", kArguments},
                                      {"patterns", std::move(patterns)},
                                      {"combinators", std::move(combinators)},
                                      {"precedence", kPrecedence}};
  std::cout << out.dump(2) << "\n";
}

}  // namespace

Command add_patterns_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "patterns", "List every registered pattern: parameters, exact rule, convention, example");
  auto json = std::make_shared<bool>(false);
  sub->add_flag("--json", *json, "print JSON instead of text");
  return {sub, [json] {
            const Registry& registry = Registry::global();
            if (*json)
              print_json(registry);
            else
              print_text(registry);
          }};
}

}  // namespace spattn::cli
