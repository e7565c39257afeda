// streaming(sink, recent): StreamingLLM's attention sinks plus recent window (A-shape).
#include "leaf.hpp"
#include "spattn/patterns/local_columns.hpp"

namespace spattn::builtin {
namespace {

constexpr std::int64_t kDefaultSink = 4, kDefaultRecent = 512;

class Streaming final : public CausalLocalColumns {
 public:
  Streaming(std::int64_t sink, std::int64_t recent) : sink_(sink), recent_(recent) {}
  std::int64_t local_lo(std::int64_t p) const override { return p - recent_ + 1; }
  ColumnSet columns(const Geometry&, int) const override { return {kFarRight, 0, sink_}; }
  std::string spec() const override {
    std::vector<std::string> args;
    if (sink_ != kDefaultSink) args.push_back(fmt::format("sink={}", sink_));
    if (recent_ != kDefaultRecent) args.push_back(fmt::format("recent={}", recent_));
    if (args.empty()) return "streaming";
    return fmt::format("streaming({})", fmt::join(args, ", "));
  }

 private:
  std::int64_t sink_, recent_;
};

}  // namespace

void register_streaming(Registry& r) {
  r.add({"streaming",
         {int_param("sink", 0, "number of initial tokens kept (start_size)", kDefaultSink),
          int_param("recent", 1,
                    "number of most recent keys kept, the query's own included "
                    "(recent_size)",
                    kDefaultRecent)},
         "StreamingLLM / A-shape: the first sink keys plus the last recent keys, causal",
         "j <= p(i) and (j < sink or p(i) - j < recent)",
         "mit-han-lab/streaming-llm streaming_llm/kv_cache.py StartRecentKVCache(start_size="
         "sink, recent_size=recent) decoding one token at a time: evict_for_space(.., 1) keeps "
         "keys [0, start_size) and the last recent_size - 1, and the new token adds itself "
         "(Xiao et al. 2023); equals (sliding(recent) | sink(sink)) & causal",
         "streaming(sink=4, recent=2048)",
         [](const Args& a) -> PatternPtr {
           return std::make_shared<Streaming>(a.get_int("sink"), a.get_int("recent"));
         }});
}

}  // namespace spattn::builtin
