// chunked(c): floor(j / c) == floor(p(i) / c).
#include "leaf.hpp"
#include "spattn/patterns/band.hpp"

namespace spattn::builtin {
namespace {

class Chunked final : public Band {
 public:
  explicit Chunked(std::int64_t c) : c_(c) {}
  std::int64_t lo(std::int64_t p) const override { return floor_div(p, c_) * c_; }
  std::int64_t hi(std::int64_t p) const override { return floor_div(p, c_) * c_ + c_ - 1; }
  std::string spec() const override { return fmt::format("chunked({})", c_); }

 private:
  std::int64_t c_;
};

}  // namespace

void register_chunked(Registry& r) {
  r.add({"chunked",
         {int_param("c", 1, "chunk length in tokens")},
         "block-diagonal chunks of c positions (bidirectional inside a chunk)",
         "floor(j / c) == floor(p(i) / c)",
         "Llama 4 chunked attention (attention_chunk_size) when combined as chunked(c) & causal; "
         "local attention of c-token blocks (Long Range Arena 'local')",
         "chunked(8192) & causal",
         [](const Args& a) { return std::make_shared<Chunked>(a.get_int("c")); }});
}

}  // namespace spattn::builtin
