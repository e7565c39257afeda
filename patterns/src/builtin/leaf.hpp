#pragma once
// Internal to the built-in patterns (not installed): the public authoring helpers and the
// registration function of each built-in.
#include <fmt/format.h>

#include <limits>
#include <string>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/leaf.hpp"
#include "spattn/patterns/params.hpp"
#include "spattn/patterns/pattern.hpp"
#include "spattn/patterns/registry.hpp"

namespace spattn::builtin {

// Registration of each built-in (one per file).
void register_dense(Registry&);
void register_selectors(Registry&);
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
