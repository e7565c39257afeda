#pragma once
// Spec strings: the textual pattern language.
//
//   expr    := inter ( '|' inter )*                    union (lowest precedence)
//   inter   := diff ( '&' diff )*                      intersection
//   diff    := atom ( '-' atom )*                      difference (binds tightest), left-assoc.
// (the precedence of Python's set operators: a | b - c & d is a | ((b - c) & d))
//   atom    := NAME [ '(' args ')' ] | '(' expr ')' | heads
//   args    := arg ( ',' arg )*          arg := value | NAME '=' value
//   value   := INT | '[' [ INT (',' INT)* ] ']' | '"' chars '"'
//   heads   := 'heads' '(' group ( ';' group )* ')'  group := hset ':' expr
//   hset    := hrange ( ',' hrange )*                  hrange := INT [ '..' INT ]  (inclusive)
//
// Example: heads(0..3: sliding(1024) | sink(4); 4..7: causal)
// The printer (Pattern::spec) gives a canonical form: required integer arguments positional,
// list and string arguments and optional ones named (optional ones only when they differ from
// their default; blocks always prints its block), minimal parentheses, flattened unions and
// intersections, per-head groups sorted by first head with merged head ranges.
#include <cstddef>
#include <string_view>

#include "spattn/patterns/pattern.hpp"
#include "spattn/patterns/registry.hpp"

namespace spattn {

inline constexpr std::size_t kMaxSpecLength = 65536;  // characters
inline constexpr int kMaxSpecDepth = 100;             // nesting of parentheses and calls

// Parses a spec string; throws SpecError (with 1-based column) on malformed input or unknown
// names, UsageError on bad parameter values.
PatternPtr parse_spec(std::string_view spec, const Registry& registry = Registry::global());

}  // namespace spattn
