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
  builtin::register_random(r);
  builtin::register_blocks(r);
}

}  // namespace spattn
