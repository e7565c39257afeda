// st_fixed(l, c, num_verts): the Sparse Transformer's fixed pattern (local block + summaries).
#include "leaf.hpp"
#include "spattn/patterns/local_columns.hpp"

namespace spattn::builtin {
namespace {

class StFixed final : public CausalLocalColumns {
 public:
  StFixed(std::int64_t l, std::int64_t c, std::int64_t num_verts)
      : l_(l), c_(c), num_verts_(num_verts) {}
  std::int64_t local_lo(std::int64_t p) const override { return floor_div(p, l_) * l_; }
  // Head h uses summary group v = h mod num_verts: positions [l - (v+1)c, l - v c) of each block.
  ColumnSet columns(const Geometry&, int head) const override {
    const std::int64_t v = head % num_verts_;
    return {l_, l_ - (v + 1) * c_, c_};
  }
  std::string spec() const override {
    if (num_verts_ == 1) return fmt::format("st_fixed({}, {})", l_, c_);
    return fmt::format("st_fixed({}, {}, num_verts={})", l_, c_, num_verts_);
  }
  bool depends_on_head() const override { return num_verts_ > 1; }
  std::string head_spec(int head) const override {
    return num_verts_ > 1 ? fmt::format("{}@{}", spec(), head % num_verts_) : spec();
  }
  void check(const Geometry& g) const override {
    if (g.heads % num_verts_ != 0)
      throw UsageError(fmt::format(
          "{}: the geometry has {} heads, not a multiple of num_verts = {} (the reference "
          "asserts n_heads % num_verts == 0)",
          spec(), g.heads, num_verts_));
  }

 private:
  std::int64_t l_, c_, num_verts_;
};

}  // namespace

void register_st_fixed(Registry& r) {
  r.add(
      {"st_fixed",
       {int_param("l", 1, "block length in tokens (local_attn_ctx)"),
        int_param("c", 1, "summary positions at the end of each block (vertsize * blocksize)"),
        int_param("num_verts", 1,
                  "summary groups: head h uses group h mod num_verts, the c positions before "
                  "those of the previous group (1: every head uses the last c)",
                  1, false, kMaxHeads)},
       "Sparse Transformer fixed attention: the query's own block of l plus the last c "
       "positions of every block, causal",
       "j <= p(i) and (floor(j / l) == floor(p(i) / l) or j mod l >= l - c); with num_verts: "
       "l - (v+1)c <= j mod l < l - v c, v = head mod num_verts",
       "openai/sparse_attention attention.py get_blocksparse_obj(attn_mode='fixed', "
       "local_attn_ctx=l, vertsize * blocksize = c, num_verts) with get_callback's causal "
       "diagonal blocks, taken at token level (the reference needs l and c to be multiples "
       "of blocksize; here any l >= c works) (Child et al. 2019, Sec. 4.2)",
       "st_fixed(128, 32)",
       [](const Args& a) -> PatternPtr {
         const std::int64_t l = a.get_int("l"), c = a.get_int("c");
         const std::int64_t nv = a.get_int("num_verts");
         if (c > l)
           throw UsageError(fmt::format(
               "st_fixed: c = {} exceeds l = {}: the summary positions lie inside a block", c, l));
         if (nv * c > l)
           throw UsageError(fmt::format(
               "st_fixed: num_verts * c = {} * {} = {} exceeds l = {}: each head's summary "
               "group of c positions must fit inside a block",
               nv, c, nv * c, l));
         return std::make_shared<StFixed>(l, c, nv);
       }});
}

}  // namespace spattn::builtin
