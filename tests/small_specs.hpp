#pragma once
// A small spec for each registered pattern, for tests that run every pattern over small
// geometries (any nq, nk >= 1 and head count; the ds_* ones need nq = nk, a multiple of 16).
// A new pattern gets an entry here; tests fail with a request for one when it is missing.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

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

// A table spec with its per-case placeholders filled in for nq queries and nk keys: {blocks} a
// seeded layout file of 16-token cells (about half kept, one layout for all heads), {deepspeed}
// a DeepSpeed "fixed" config file, {documents} three documents adding up to nk. Files go to dir.
inline std::string instantiate_small_spec(const std::string& spec, std::int64_t nq, std::int64_t nk,
                                          const TempDir& dir, std::uint64_t seed) {
  if (spec == "{blocks}") {
    const std::int64_t qb = (nq + 15) / 16, kb = (nk + 15) / 16;
    std::vector<unsigned char> cells(static_cast<std::size_t>(qb * kb));
    std::mt19937_64 rng(seed);
    for (auto& c : cells) c = static_cast<unsigned char>(rng() % 2);
    const std::string path = dir.file(fmt::format("blocks_{}.npy", seed));
    write_npy(path, "|u1", {1, qb, kb}, cells.data(), cells.size());
    return fmt::format("blocks(file=\"{}\", block=16)", path);
  }
  if (spec == "{deepspeed}") {
    const std::string path = dir.file(fmt::format("ds_{}.json", seed));
    std::ofstream(path) << R"({"sparse_attention": {"mode": "fixed", "block": 16, )"
                           R"("num_local_blocks": 2, "num_global_blocks": 1}})";
    return fmt::format("deepspeed(file=\"{}\")", path);
  }
  if (spec == "{documents}") {
    if (nk < 3) return fmt::format("documents(lengths=[{}]) & causal", nk);
    const std::int64_t a = std::max<std::int64_t>(1, nk / 3), b = std::max<std::int64_t>(1, nk / 4);
    return fmt::format("documents(lengths=[{}, {}, {}]) & causal", a, b, nk - a - b);
  }
  return spec;
}

}  // namespace spattn::test
