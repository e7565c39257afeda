// mistral_swa(sliding_window): Mistral's sliding-window attention, as sliding(W).
#include "leaf.hpp"
#include "spattn/patterns/delegate.hpp"

namespace spattn::builtin {

void register_mistral_swa(Registry& r) {
  r.add({"mistral_swa",
         {int_param("sliding_window", 1, "window in keys, the query's own position included")},
         "Mistral sliding-window attention (also Gemma's local layers): the last W keys",
         "p(i) - W < j <= p(i)",
         "Mistral config sliding_window as Hugging Face transformers masking_utils "
         "(sliding_window_causal_mask_function) applies it: W keys including the query's own; "
         "Gemma 2/3 local layers use the same rule; equals sliding(W)",
         "mistral_swa(4096)",
         [](const Args& a) -> PatternPtr {
           const std::int64_t w = a.get_int("sliding_window");
           return std::make_shared<Delegate>(fmt::format("mistral_swa({})", w),
                                             compose(fmt::format("sliding({})", w)));
         }});
}

}  // namespace spattn::builtin
