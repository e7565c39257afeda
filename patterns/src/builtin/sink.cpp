// sink(s): j < s (StreamingLLM attention sinks); prefix(p): j < p (prefix-LM with causal).
#include "leaf.hpp"

namespace spattn::builtin {
namespace {

// Keys [0, n) are visible to every query.
class LeadingKeys final : public Leaf {
 public:
  LeadingKeys(const char* name, std::int64_t n) : name_(name), n_(n) {}
  bool allows(const Geometry&, int, std::int64_t, std::int64_t j) const override { return j < n_; }
  std::string spec() const override { return fmt::format("{}({})", name_, n_); }
  bool key_ranges(const Geometry&, int, std::int64_t, std::int64_t,
                  std::vector<KeyRange>& out) const override {
    out.assign(1, KeyRange{0, n_});
    return true;
  }
  void full_key_ranges(const Geometry&, int, std::int64_t, std::int64_t,
                       std::vector<KeyRange>& out) const override {
    out.assign(1, KeyRange{0, n_});
  }
  TileClass classify(const Geometry&, int, const Tile& t) const override {
    if (t.k_end <= n_) return TileClass::Full;
    if (t.k_begin >= n_) return TileClass::Empty;
    return TileClass::Partial;
  }
  void fill_tile(const Geometry&, int, const Tile& t, TileMask& m) const override {
    for (std::int64_t r = 0; r < t.rows(); ++r) m.set_range(r, 0, n_ - t.k_begin);
  }

 private:
  const char* name_;
  std::int64_t n_;
};

}  // namespace

void register_sink(Registry& r) {
  r.add({"sink",
         {int_param("s", 1, "number of sink tokens at the start")},
         "attention sinks: the first s keys are visible to every query",
         "j < s",
         "StreamingLLM (Xiao et al. 2023) sink tokens; compose: sliding(w) | sink(s) & causal",
         "sliding(4096) | sink(4)",
         [](const Args& a) { return std::make_shared<LeadingKeys>("sink", a.get_int("s")); }});
  r.add({"prefix",
         {int_param("p", 1, "length of the bidirectional prefix")},
         "the first p keys are visible to every query (the same set as sink(p))",
         "j < p",
         "prefix-LM (T5/UniLM/PaLI style) is prefix(p) | causal",
         "prefix(256) | causal",
         [](const Args& a) { return std::make_shared<LeadingKeys>("prefix", a.get_int("p")); }});
}

}  // namespace spattn::builtin
