#pragma once
// A small spec for each registered pattern, for tests that run every pattern over small
// geometries (any nq >= 1, nk >= 64 and head count; the ds_* ones need nq = nk, a multiple of
// 16). A new pattern gets an entry here; tests fail with a request for one when it is missing.
// Below nk = 64 some of them hold a window, chunk, stride or block longer than the sequence,
// which the library refuses (too_long_for tells such a geometry apart).
#include <map>
#include <string>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/pattern.hpp"

namespace spattn::test {

// True when `p` refuses `g` because one of its lengths (window, stride, chunk, block, sink,
// prefix) exceeds nk; any other refusal propagates. Tests that sweep geometries skip these; the
// refusal itself is checked, at each family's boundary, in test_families_published.cpp.
inline bool too_long_for(const Pattern& p, const Geometry& g) {
  try {
    p.check(g);
    return false;
  } catch (const LengthError&) {
    return true;
  }
}

// A spec for each registered pattern that fits any small geometry with nk >= 64 (lengths,
// heads); {blocks}, {deepspeed} and {documents} are filled in per case.
inline const std::map<std::string, std::string>& small_spec_table() {
  static const std::map<std::string, std::string> table = {
      {"bigbird", "bigbird(block=8, window=3, global=2, random=2, seed=1)"},
      {"blocks", "{blocks}"},
      {"causal", "causal"},
      {"chunked", "chunked(37) & causal"},
      {"deepspeed", "{deepspeed}"},
      {"dense", "dense"},
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
