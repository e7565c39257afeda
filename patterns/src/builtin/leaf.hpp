#pragma once
// Internal helpers shared by the built-in patterns (not installed).
#include <fmt/format.h>

#include <limits>
#include <string>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/pattern.hpp"
#include "spattn/patterns/registry.hpp"

namespace spattn::builtin {

// A built-in: implements every fast path, so layouts build in O(kept tiles + partial bits).
class Leaf : public Pattern {
 public:
  bool bounds_keys() const override { return true; }
  bool analytic_tiles() const override { return true; }
};

// Half-open positional span [p(q_begin), p(q_end - 1)] of a query range.
struct PosSpan {
  std::int64_t first, last;
};
inline PosSpan positions(const Geometry& g, std::int64_t q0, std::int64_t q1) {
  return {g.position(q0), g.position(q1 - 1)};
}

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

// Registration of each built-in (one per file).
void register_dense(Registry&);
void register_causal(Registry&);
void register_window(Registry&);
void register_sliding(Registry&);
void register_dilated(Registry&);
void register_global(Registry&);
void register_sink(Registry&);
void register_chunked(Registry&);
void register_documents(Registry&);
void register_strided(Registry&);
void register_columns(Registry&);
void register_diagonals(Registry&);
void register_random(Registry&);
void register_blocks(Registry&);
void register_bigbird(Registry&);
void register_st_strided(Registry&);
void register_st_fixed(Registry&);
void register_longformer(Registry&);
void register_longformer_dilated(Registry&);
void register_streaming(Registry&);
void register_mistral_swa(Registry&);
void register_llama4_chunked(Registry&);
void register_phi3_blocksparse(Registry&);
void register_ds_dense(Registry&);
void register_ds_fixed(Registry&);
void register_ds_variable(Registry&);
void register_ds_bigbird(Registry&);
void register_ds_bslongformer(Registry&);
void register_ds_local(Registry&);
void register_deepspeed(Registry&);

}  // namespace spattn::builtin
