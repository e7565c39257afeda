// st_strided(l): the Sparse Transformer's strided pattern, its local and strided heads merged.
#include "leaf.hpp"
#include "spattn/patterns/delegate.hpp"

namespace spattn::builtin {

void register_st_strided(Registry& r) {
  r.add({"st_strided",
         {int_param("l", 1, "stride and local width in tokens (local_attn_ctx)")},
         "Sparse Transformer strided attention: the last l keys plus every l-th key back",
         "j <= p(i) and (p(i) - j < l or (p(i) - j) mod l == 0)",
         "openai/sparse_attention attention.py get_attn_mask: the union of attn_mode='local' "
         "(tf.matrix_band_part(.., local_attn_ctx - 1, 0): p(i) - j < l) and attn_mode="
         "'strided' (q >= k and (q - k) mod l == 0), both with local_attn_ctx = l (Child et al. "
         "2019, merged heads). The paper's local set reaches p(i) - j = l, which the stride "
         "already holds, so the union is the same; equals causal & (sliding(l) | strided(l))",
         "st_strided(128)",
         [](const Args& a) -> PatternPtr {
           const std::int64_t l = a.get_int("l");
           return std::make_shared<Delegate>(
               fmt::format("st_strided({})", l),
               compose(fmt::format("causal & (sliding({0}) | strided({0}))", l)));
         }});
}

}  // namespace spattn::builtin
