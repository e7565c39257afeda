#include "leaf.hpp"

namespace spattn {

void register_builtins(Registry& r) {
  builtin::register_dense(r);
  builtin::register_causal(r);
  builtin::register_window(r);
  builtin::register_sliding(r);
  builtin::register_dilated(r);
  builtin::register_global(r);
  builtin::register_sink(r);
  builtin::register_chunked(r);
  builtin::register_documents(r);
  builtin::register_strided(r);
  builtin::register_columns(r);
  builtin::register_diagonals(r);
  builtin::register_random(r);
  builtin::register_blocks(r);
  builtin::register_bigbird(r);
  builtin::register_st_strided(r);
  builtin::register_st_fixed(r);
  builtin::register_longformer(r);
  builtin::register_longformer_dilated(r);
  builtin::register_streaming(r);
  builtin::register_mistral_swa(r);
  builtin::register_llama4_chunked(r);
  builtin::register_phi3_blocksparse(r);
  builtin::register_ds_dense(r);
  builtin::register_ds_fixed(r);
  builtin::register_ds_variable(r);
  builtin::register_ds_bigbird(r);
  builtin::register_ds_bslongformer(r);
  builtin::register_ds_local(r);
  builtin::register_deepspeed(r);
  builtin::register_selectors(r);
}

}  // namespace spattn
