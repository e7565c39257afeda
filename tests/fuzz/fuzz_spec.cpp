// fuzz_spec: parse_spec on arbitrary bytes.
//
// Malformed specs must end in a spattn::Error (SpecError/UsageError); any other exception, crash
// or sanitizer report is a bug. A spec that parses must have a canonical form that parses again
// to the same canonical form (Pattern::spec: "parse_spec(spec()) yields an equal pattern").
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_registry.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

[[noreturn]] void fail(const char* what, std::string_view input, const std::string& canonical,
                       const std::string& detail) {
  std::fprintf(stderr, "fuzz_spec: %s\n  input:     %.*s\n  canonical: %s\n  detail:    %s\n", what,
               static_cast<int>(input.size()), input.data(), canonical.c_str(), detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const spattn::Registry& registry = spattn::fuzz::fuzz_registry();
  spattn::PatternPtr p;
  try {
    p = spattn::parse_spec(input, registry);
  } catch (const spattn::Error&) {
    return 0;  // rejected with a proper error: fine
  }
  const std::string canonical = p->spec();
  // A canonical form longer than the parser's limit cannot be parsed by definition (named
  // arguments can make it longer than the input); libFuzzer's default -max_len keeps inputs far
  // below the limit.
  if (canonical.size() > spattn::kMaxSpecLength) return 0;
  spattn::PatternPtr q;
  try {
    q = spattn::parse_spec(canonical, registry);
  } catch (const spattn::Error& e) {
    fail("the canonical form does not parse", input, canonical, e.what());
  }
  const std::string again = q->spec();
  if (again != canonical) fail("the canonical form does not round-trip", input, canonical, again);
  return 0;
}
