#pragma once
// Parameter declarations for Registry::add: integers with bounds, integer lists, booleans and
// strings, each with its doc line (what `spattn patterns` prints). The spec parser validates
// arguments against them before a factory sees them.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "spattn/patterns/registry.hpp"

namespace spattn {

// An integer parameter with bounds and a doc line.
inline ParamSpec int_param(std::string name, std::int64_t min, std::string doc,
                           std::optional<std::int64_t> def = std::nullopt, bool required = true,
                           std::int64_t max = std::int64_t{1} << 40) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::Int;
  p.min = min;
  p.max = max;
  p.doc = std::move(doc);
  if (def) {
    p.default_value = *def;
    p.required = false;
  } else {
    p.required = required;
  }
  return p;
}

// An integer-list parameter whose elements lie in [min, max].
inline ParamSpec list_param(std::string name, std::int64_t min, std::int64_t max, std::string doc,
                            bool required) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::IntList;
  p.required = required;
  p.min = min;
  p.max = max;
  p.doc = std::move(doc);
  return p;
}

// A boolean parameter, default false: written 0/1 or false/true, printed 0/1.
inline ParamSpec bool_param(std::string name, std::string doc) {
  ParamSpec p = int_param(std::move(name), 0, std::move(doc), 0, false, 1);
  p.boolean = true;
  return p;
}

// A required string parameter.
inline ParamSpec string_param(std::string name, std::string doc) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::String;
  p.required = true;
  p.doc = std::move(doc);
  return p;
}

// A decimal parameter in [min, max] ((min, max] when min_open), with a default.
inline ParamSpec real_param(std::string name, double min, double max, bool min_open,
                            std::string doc, std::optional<double> def = std::nullopt) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::Real;
  p.real_min = min;
  p.real_max = max;
  p.real_min_open = min_open;
  p.doc = std::move(doc);
  if (def) p.default_value = *def;
  p.required = !def;
  return p;
}

// A string parameter taking one of `choices` (written quoted or bare), default `def`.
inline ParamSpec choice_param(std::string name, std::vector<std::string> choices, std::string def,
                              std::string doc) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::String;
  p.required = false;
  p.default_value = std::move(def);
  p.choices = std::move(choices);
  p.doc = std::move(doc);
  return p;
}

}  // namespace spattn
