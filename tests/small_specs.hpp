#pragma once
// A small spec for each registered pattern, for tests that run every pattern over small
// geometries (any nq, nk >= 1 and head count; the ds_* ones need nq = nk, a multiple of 16).
// A new pattern gets an entry here; tests fail with a request for one when it is missing.
#include <map>
#include <string>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::test {

// Whether a registered pattern is a selector (chooses its keys from Q and K, so it has no
// layout without inputs; tests/test_selectors.cpp covers them). Patterns whose example reads
// a file are not.
inline bool is_selector(const PatternInfo& info) {
  try {
    return parse_spec(info.example)->needs_inputs();
  } catch (const Error&) {
    return false;
  }
}

// A spec for each registered pattern that fits any small geometry (lengths, heads); {blocks},
// {deepspeed} and {documents} are filled in per case.
inline const std::map<std::string, std::string>& small_spec_table() {
  static const std::map<std::string, std::string> table = {
      {"bigbird", "bigbird(block=8, window=3, global=2, random=2, seed=1)"},
      {"blocks", "{blocks}"},
      {"causal", "causal"},
      {"chunked", "chunked(37) & causal"},
      {"deepspeed", "{deepspeed}"},
      {"columns", "columns([0, 2, 3, 11]) | sliding(2)"},
      {"dense", "dense"},
      {"diagonals", "diagonals([0, 1, 5, 6, 7, 33, -2])"},
      {"dilated", "dilated(5, 3)"},
      {"documents", "{documents}"},
      {"ds_bigbird", "ds_bigbird(block=16, num_random_blocks=1, num_sliding_window_blocks=3)"},
      {"ds_bslongformer",
       "ds_bslongformer(block=16, num_sliding_window_blocks=3, global_block_indices=[0])"},
      {"ds_dense", "ds_dense(block=16)"},
      {"ds_fixed", "ds_fixed(block=16, num_local_blocks=4, num_global_blocks=1)"},
      {"ds_local", "ds_local(block=16, num_sliding_window_blocks=3)"},
      {"ds_variable",
       "ds_variable(block=16, local_window_blocks=[2, 4], global_block_indices=[0])"},
      {"global", "window(4) | global(tokens=[0, 13])"},
      {"llama4_chunked", "llama4_chunked(50)"},
      {"longformer", "longformer(16, global=[0, 5])"},
      {"longformer_dilated", "longformer_dilated(8, d=2)"},
      {"mistral_swa", "mistral_swa(20)"},
      {"phi3_blocksparse", "phi3_blocksparse(2, 3, block_size=16)"},
      {"prefix", "prefix(30) | causal"},
      {"random", "random(2, block=16, seed=7)"},
      {"sink", "sliding(12) | sink(3)"},
      {"sliding", "sliding(12)"},
      {"st_fixed", "st_fixed(32, 8)"},
      {"st_strided", "st_strided(16)"},
      {"streaming", "streaming(sink=4, recent=24)"},
      {"strided", "strided(9) & causal"},
      {"window", "window(6, 2)"},
  };
  return table;
}

}  // namespace spattn::test
