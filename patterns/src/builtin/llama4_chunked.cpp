// llama4_chunked(attention_chunk_size): Llama 4's chunked attention, as chunked(C) & causal.
#include "leaf.hpp"
#include "spattn/patterns/delegate.hpp"

namespace spattn::builtin {

void register_llama4_chunked(Registry& r) {
  r.add({"llama4_chunked",
         {int_param("attention_chunk_size", 1, "chunk length C in tokens")},
         "Llama 4 chunked attention: causal inside fixed chunks of C positions",
         "floor(j / C) == floor(p(i) / C) and j <= p(i)",
         "Hugging Face transformers Llama 4 config attention_chunk_size, as masking_utils "
         "(chunked_causal_mask_function) applies it on the chunked layers; equals "
         "chunked(C) & causal",
         "llama4_chunked(8192)",
         [](const Args& a) -> PatternPtr {
           const std::int64_t c = a.get_int("attention_chunk_size");
           return std::make_shared<Delegate>(fmt::format("llama4_chunked({})", c),
                                             compose(fmt::format("chunked({}) & causal", c)));
         }});
}

}  // namespace spattn::builtin
