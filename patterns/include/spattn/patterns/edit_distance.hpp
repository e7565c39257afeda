#pragma once
// Levenshtein distance between two names, for the "did you mean" of error messages (pattern
// names, experiment keys, command-line options).
#include <cstddef>
#include <string_view>

namespace spattn {

// Insertions, deletions and substitutions turning a into b, characters compared as they are.
// O(|a| |b|) time, O(|b|) memory.
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace spattn
