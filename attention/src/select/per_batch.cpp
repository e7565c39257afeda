#include "spattn/attention/per_batch.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "spattn/patterns/error.hpp"

namespace spattn {

AttentionStats attention_per_batch(const ConstTensorView& q, const ConstTensorView& k,
                                   const ConstTensorView& v, std::span<const Layout> layouts,
                                   const TensorView& o, const TensorView& lse,
                                   const AttentionOptions& options) {
  const std::int64_t batches = q.batch();
  if (layouts.empty() ||
      (layouts.size() != 1 && static_cast<std::int64_t>(layouts.size()) != batches))
    throw UsageError(fmt::format("attention_per_batch: {} layouts for batch {}: give 1 or {}",
                                 layouts.size(), batches, batches));
  if (layouts.size() == 1) return attention(q, k, v, layouts.front(), o, lse, options);
  AttentionStats total;
  for (std::int64_t b = 0; b < batches; ++b) {
    const AttentionStats s = attention(batch_slice(q, b), batch_slice(k, b), batch_slice(v, b),
                                       layouts[static_cast<std::size_t>(b)], batch_slice(o, b),
                                       batch_slice(lse, b), options);
    total.workspace_bytes = std::max(total.workspace_bytes, s.workspace_bytes);
    total.tasks += s.tasks;
    total.split_rows += s.split_rows;
    total.split_parts += s.split_parts;
    total.paths += s.paths;
  }
  return total;
}

}  // namespace spattn
