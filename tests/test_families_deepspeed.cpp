// The ds_* patterns against DeepSpeed's SparsityConfig.make_layout
// (deepspeed/ops/sparse_attention/sparsity_config.py): an independent oracle below transliterates
// make_layout loop for loop over a dense [heads, nb, nb] array (Python slicing included), and
// the built layouts must equal it cell for cell at the pair level, for many configurations and
// tilings. Plus hand-computed layouts, the random blocks' placement and determinism, rejected
// parameter combinations, DeepSpeed config files and the CLI's --from-deepspeed.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/deepspeed_config.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

using namespace spattn;

namespace {

// ---------------------------------------------------------------------------------------------
// The oracle: DeepSpeed's make_layout, transliterated.

// A [heads, nb, nb] int layout, as torch.zeros((num_heads, num_blocks, num_blocks)).
struct Dense3 {
  int heads = 0;
  std::int64_t nb = 0;
  std::vector<int> v;
  Dense3(int h, std::int64_t n) : heads(h), nb(n), v(static_cast<std::size_t>(h * n * n), 0) {}
  int& at(int h, std::int64_t r, std::int64_t c) {
    return v[static_cast<std::size_t>((h * nb + r) * nb + c)];
  }
  int get(int h, std::int64_t r, std::int64_t c) const {
    return v[static_cast<std::size_t>((h * nb + r) * nb + c)];
  }
};

// Python's slice bounds [start:stop] on a dimension of length n (None = nullopt).
std::pair<std::int64_t, std::int64_t> py_slice(std::optional<std::int64_t> start,
                                               std::optional<std::int64_t> stop, std::int64_t n) {
  auto norm = [n](std::int64_t x) {
    if (x < 0) x += n;
    return std::clamp<std::int64_t>(x, 0, n);
  };
  const std::int64_t a = start ? norm(*start) : 0, b = stop ? norm(*stop) : n;
  return {a, std::max(a, b)};
}

// layout[h, r0:r1, c0:c1] = 1 with Python slice semantics.
void set_slice(Dense3& L, int h, std::optional<std::int64_t> r0, std::optional<std::int64_t> r1,
               std::optional<std::int64_t> c0, std::optional<std::int64_t> c1) {
  const auto [ra, rb] = py_slice(r0, r1, L.nb);
  const auto [ca, cb] = py_slice(c0, c1, L.nb);
  for (std::int64_t r = ra; r < rb; ++r)
    for (std::int64_t c = ca; c < cb; ++c) L.at(h, r, c) = 1;
}

void propagate(Dense3& L, bool per_head) {  // check_and_propagate_first_head_layout
  if (per_head) return;
  for (int h = 1; h < L.heads; ++h)
    for (std::int64_t r = 0; r < L.nb; ++r)
      for (std::int64_t c = 0; c < L.nb; ++c) L.at(h, r, c) = L.get(0, r, c);
}

void tril(Dense3& L) {  // torch.tril over the whole [heads, nb, nb] tensor
  for (int h = 0; h < L.heads; ++h)
    for (std::int64_t r = 0; r < L.nb; ++r)
      for (std::int64_t c = r + 1; c < L.nb; ++c) L.at(h, r, c) = 0;
}

struct FixedCfg {
  int L = 4, G = 1;
  bool uni = false, horizontal = false, per_head = false;
  int P = 1;
};
Dense3 oracle_fixed(const FixedCfg& k, int heads, std::int64_t nb) {
  Dense3 L(heads, nb);
  const int layout_heads = k.per_head ? heads : 1;
  for (int h = 0; h < layout_heads; ++h) {
    // set_local_layout
    for (std::int64_t i = 0; i < nb; i += k.L) {
      const std::int64_t end = std::min<std::int64_t>(i + k.L, nb);
      for (std::int64_t row = i; row < end; ++row)
        for (std::int64_t col = i; col < (k.uni ? row + 1 : end); ++col) L.at(h, row, col) = 1;
    }
    // set_global_layout
    const std::int64_t first = k.L - (1 + h % k.P) * k.G;
    std::int64_t end = nb - (nb % k.L);
    for (std::int64_t i = first; i < end; i += k.L) {
      const std::int64_t first_row = k.uni ? i : 0;
      set_slice(L, h, first_row, std::nullopt, i, i + k.G);
      if (k.horizontal) set_slice(L, h, i, i + k.G, std::nullopt, std::nullopt);
    }
    if (end < nb) {
      // With fewer than G blocks, nb - G is negative: DeepSpeed's slice would wrap around from
      // the end; the rule places the group at the end of the sequence, clipped at block 0.
      const std::int64_t start =
          std::max<std::int64_t>(0, std::min<std::int64_t>(end + first, nb - k.G));
      end = start + k.G;
      const std::int64_t first_row = k.uni ? start : 0;
      set_slice(L, h, first_row, std::nullopt, start, end);
      if (k.horizontal) set_slice(L, h, start, end, std::nullopt, std::nullopt);
    }
  }
  propagate(L, k.per_head);
  return L;
}

struct VariableCfg {
  std::vector<std::int64_t> windows{4}, starts{0};
  std::optional<std::vector<std::int64_t>> ends;
  bool uni = false, horizontal = false, per_head = false;
};
Dense3 oracle_variable(const VariableCfg& k, int heads, std::int64_t nb) {  // no random blocks
  Dense3 L(heads, nb);
  const int layout_heads = k.per_head ? heads : 1;
  for (int h = 0; h < layout_heads; ++h) {
    // set_local_layout
    std::int64_t start_idx = 0, end_idx = 0, block_size = 0;
    for (std::int64_t bs : k.windows) {
      block_size = bs;
      end_idx += bs;
      end_idx = std::min(end_idx, nb);
      for (std::int64_t row = start_idx; row < end_idx; ++row)
        for (std::int64_t col = start_idx; col < (k.uni ? row + 1 : end_idx); ++col)
          L.at(h, row, col) = 1;
      start_idx += bs;
    }
    for (std::int64_t i = start_idx; i < nb; i += block_size) {
      end_idx = std::min(i + block_size, nb);
      for (std::int64_t row = i; row < end_idx; ++row)
        for (std::int64_t col = i; col < (k.uni ? row + 1 : end_idx); ++col) L.at(h, row, col) = 1;
    }
    // set_global_layout
    if (!k.ends) {
      for (std::int64_t idx : k.starts)
        if (idx < nb) {
          if (k.horizontal) set_slice(L, h, idx, idx + 1, std::nullopt, std::nullopt);
          set_slice(L, h, k.uni ? idx : 0, std::nullopt, idx, idx + 1);
        }
    } else {
      for (std::size_t q = 0; q < k.starts.size(); ++q) {
        const std::int64_t s = k.starts[q];
        if (s < nb) {
          const std::int64_t e = std::min((*k.ends)[q], nb);
          if (k.horizontal) set_slice(L, h, s, e, std::nullopt, std::nullopt);
          set_slice(L, h, k.uni ? s : 0, std::nullopt, s, e);
        }
      }
    }
  }
  propagate(L, k.per_head);
  return L;
}

struct BigBirdCfg {
  int W = 3, G = 1;
  bool uni = false, per_head = false;
};
Dense3 oracle_bigbird(const BigBirdCfg& k, int heads, std::int64_t nb) {  // no random blocks
  Dense3 L(heads, nb);
  const int layout_heads = k.per_head ? heads : 1;
  for (int h = 0; h < layout_heads; ++h) {
    const std::int64_t w = k.W / 2;
    for (std::int64_t row = 0; row < nb; ++row) {
      const std::int64_t start = std::max<std::int64_t>(0, row - w);
      const std::int64_t end = std::min(row + w + 1, nb);
      set_slice(L, h, row, row + 1, start, end);
    }
    set_slice(L, h, 0, k.G, std::nullopt, std::nullopt);
    set_slice(L, h, std::nullopt, std::nullopt, 0, k.G);
    if (k.uni) tril(L);
  }
  propagate(L, k.per_head);
  return L;
}

struct LongformerCfg {
  int W = 3;
  std::vector<std::int64_t> starts{0};
  std::optional<std::vector<std::int64_t>> ends;
  bool uni = false, per_head = false;
};
Dense3 oracle_bslongformer(const LongformerCfg& k, int heads, std::int64_t nb) {
  Dense3 L(heads, nb);
  const int layout_heads = k.per_head ? heads : 1;
  for (int h = 0; h < layout_heads; ++h) {
    const std::int64_t w = k.W / 2;
    for (std::int64_t row = 0; row < nb; ++row) {
      const std::int64_t start = std::max<std::int64_t>(0, row - w);
      const std::int64_t end = std::min(row + w + 1, nb);
      set_slice(L, h, row, row + 1, start, end);
    }
    if (!k.ends) {
      for (std::int64_t idx : k.starts)
        if (idx < nb) {
          set_slice(L, h, idx, idx + 1, std::nullopt, std::nullopt);
          set_slice(L, h, std::nullopt, std::nullopt, idx, idx + 1);
        }
    } else {
      for (std::size_t q = 0; q < k.starts.size(); ++q) {
        const std::int64_t s = k.starts[q];
        if (s < nb) {
          const std::int64_t e = std::min((*k.ends)[q], nb);
          set_slice(L, h, s, e, std::nullopt, std::nullopt);
          set_slice(L, h, std::nullopt, std::nullopt, s, e);
        }
      }
    }
    if (k.uni) tril(L);
  }
  propagate(L, k.per_head);
  return L;
}

Dense3 oracle_local(int W, bool uni, int heads, std::int64_t nb) {
  Dense3 L(heads, nb);
  const std::int64_t w = W / 2;
  for (std::int64_t row = 0; row < nb; ++row) {
    const std::int64_t start = std::max<std::int64_t>(0, row - w);
    const std::int64_t end = uni ? row + 1 : std::min(row + w + 1, nb);
    set_slice(L, 0, row, row + 1, start, end);
  }
  propagate(L, false);
  return L;
}

// ---------------------------------------------------------------------------------------------
// Spec strings of the configurations (DeepSpeed's parameter names).

std::string list_text(const std::vector<std::int64_t>& v) {
  std::string s = "[";
  for (std::size_t k = 0; k < v.size(); ++k) s += (k ? ", " : "") + std::to_string(v[k]);
  return s + "]";
}
std::string attention_arg(bool uni) {
  return uni ? ", attention=\"unidirectional\"" : ", attention=\"bidirectional\"";
}
std::string fixed_spec(const FixedCfg& k, int block) {
  return "ds_fixed(block=" + std::to_string(block) +
         ", different_layout_per_head=" + (k.per_head ? "1" : "0") +
         ", num_local_blocks=" + std::to_string(k.L) +
         ", num_global_blocks=" + std::to_string(k.G) + attention_arg(k.uni) +
         ", horizontal_global_attention=" + (k.horizontal ? "1" : "0") +
         ", num_different_global_patterns=" + std::to_string(k.P) + ")";
}
std::string variable_spec(const VariableCfg& k, int block) {
  std::string s = "ds_variable(block=" + std::to_string(block) +
                  ", different_layout_per_head=" + (k.per_head ? "1" : "0") +
                  ", local_window_blocks=" + list_text(k.windows) +
                  ", global_block_indices=" + list_text(k.starts);
  if (k.ends) s += ", global_block_end_indices=" + list_text(*k.ends);
  return s + attention_arg(k.uni) + ", horizontal_global_attention=" + (k.horizontal ? "1" : "0") +
         ")";
}
std::string bigbird_spec(const BigBirdCfg& k, int block) {
  return "ds_bigbird(block=" + std::to_string(block) +
         ", different_layout_per_head=" + (k.per_head ? "1" : "0") +
         ", num_random_blocks=0, num_sliding_window_blocks=" + std::to_string(k.W) +
         ", num_global_blocks=" + std::to_string(k.G) + attention_arg(k.uni) + ")";
}
std::string bslongformer_spec(const LongformerCfg& k, int block) {
  std::string s = "ds_bslongformer(block=" + std::to_string(block) +
                  ", different_layout_per_head=" + (k.per_head ? "1" : "0") +
                  ", num_sliding_window_blocks=" + std::to_string(k.W) +
                  ", global_block_indices=" + list_text(k.starts);
  if (k.ends) s += ", global_block_end_indices=" + list_text(*k.ends);
  return s + attention_arg(k.uni) + ")";
}
std::string local_spec(int W, bool uni, int block) {
  return "ds_local(block=" + std::to_string(block) +
         ", num_sliding_window_blocks=" + std::to_string(W) + attention_arg(uni) + ")";
}

// ---------------------------------------------------------------------------------------------
// Comparisons.

// Every pair (i, j) of the built layout (tiles block_q x block_k) equals cell
// [h, i / block, j / block] of the oracle; the pattern's own allows() agrees on one pair per cell.
// With all_pairs false, only the four corners and the centre of every cell are compared (the
// loops below cover every pair for a quarter of the configurations).
void check_pairs(const std::string& spec, const Dense3& want, int block, int block_q, int block_k,
                 bool all_pairs = true) {
  INFO(spec << " at nb = " << want.nb << ", block = " << block << ", tiles " << block_q << "x"
            << block_k);
  const PatternPtr p = parse_spec(spec);
  const std::int64_t n = want.nb * block;
  const Geometry g{n, n, want.heads, block_q, block_k};
  const Layout layout = build_layout(*p, g);
  REQUIRE_FALSE(layout.scanned);
  std::int64_t mismatches = 0, allowed = 0;
  for (int h = 0; h < want.heads; ++h) {
    const BlockLayout& bl = layout.head(h);
    if (all_pairs) {
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < n; ++j) {
          const bool w = want.get(h, i / block, j / block) != 0;
          allowed += w;
          mismatches += bl.allows(i, j) != w;
        }
    } else {
      for (std::int64_t r = 0; r < want.nb; ++r)
        for (std::int64_t c = 0; c < want.nb; ++c) {
          const bool w = want.get(h, r, c) != 0;
          allowed += w ? std::int64_t{block} * block : 0;
          const std::int64_t i0 = r * block, j0 = c * block, e = block - 1;
          for (auto [di, dj] : {std::pair<std::int64_t, std::int64_t>{0, 0},
                                {0, e},
                                {e, 0},
                                {e, e},
                                {e / 2, e / 2}})
            mismatches += bl.allows(i0 + di, j0 + dj) != w;
        }
    }
    for (std::int64_t r = 0; r < want.nb; ++r)
      for (std::int64_t c = 0; c < want.nb; ++c) {
        // A pair inside the cell that moves with (r, c), to reach several offsets.
        const std::int64_t i = r * block + (r * 7 + c) % block, j = c * block + (c * 5 + r) % block;
        mismatches += p->allows(g, h, i, j) != (want.get(h, r, c) != 0);
      }
  }
  CHECK(mismatches == 0);
  CHECK(layout.counts().allowed_pairs == allowed);
}

// With tiles equal to the DeepSpeed block, the kept tiles are exactly the oracle's cells, all
// Full.
void check_tiles(const std::string& spec, const Dense3& want, int block) {
  INFO(spec << " at nb = " << want.nb << ", block = " << block);
  const PatternPtr p = parse_spec(spec);
  const std::int64_t n = want.nb * block;
  const Layout layout = build_layout(*p, Geometry{n, n, want.heads, block, block});
  for (int h = 0; h < want.heads; ++h) {
    const BlockLayout& bl = layout.head(h);
    std::string got_rows, want_rows;
    for (std::int64_t r = 0; r < want.nb; ++r) {
      std::string row(static_cast<std::size_t>(want.nb), '0'), wrow = row;
      for (std::int64_t t = bl.row_ptr()[r]; t < bl.row_ptr()[r + 1]; ++t) {
        row[static_cast<std::size_t>(bl.col_index()[t])] =
            bl.tile_class(t) == TileClass::Full ? '1' : 'p';
      }
      for (std::int64_t c = 0; c < want.nb; ++c)
        wrow[static_cast<std::size_t>(c)] = want.get(h, r, c) ? '1' : '0';
      got_rows += row + "\n";
      want_rows += wrow + "\n";
    }
    INFO("head " << h);
    CHECK(got_rows == want_rows);
  }
}

// Block rows of head h as strings of 0/1 (from the pattern's allows at each cell's first pair,
// then checked against every pair by check_pairs elsewhere).
std::vector<std::string> block_rows(const std::string& spec, std::int64_t nb, int block, int head,
                                    int heads = 1) {
  const PatternPtr p = parse_spec(spec);
  const std::int64_t n = nb * block;
  const Layout layout = build_layout(*p, Geometry{n, n, heads, 16, 16});
  std::vector<std::string> rows;
  for (std::int64_t r = 0; r < nb; ++r) {
    std::string s;
    for (std::int64_t c = 0; c < nb; ++c) {
      // Every pair of the cell must agree; report '?' otherwise.
      bool any = false, all = true;
      for (std::int64_t i = r * block; i < (r + 1) * block; ++i)
        for (std::int64_t j = c * block; j < (c + 1) * block; ++j) {
          const bool a = layout.head(head).allows(i, j);
          any = any || a;
          all = all && a;
        }
      s += all ? '1' : any ? '?' : '0';
    }
    rows.push_back(s);
  }
  return rows;
}

std::string error_of(const std::string& spec, std::int64_t n, int heads = 1, int block = 16) {
  try {
    const PatternPtr p = parse_spec(spec);
    build_layout(*p, Geometry{n, n, heads, block, block});
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("ds: hand-computed block layouts", "[deepspeed]") {
  using Rows = std::vector<std::string>;
  SECTION("fixed, bidirectional, short last window") {
    // L = 4, G = 1, nb = 6: windows [0,4) and [4,6); f = 4 - 1 = 3, so column 3 is global; the
    // short last window adds column min(4 + 3, 6 - 1) = 5; both kept by every row.
    CHECK(block_rows("ds_fixed(block=16)", 6, 16, 0) ==
          Rows{"111101", "111101", "111101", "111101", "000111", "000111"});
  }
  SECTION("fixed, unidirectional, short last window") {
    // Same groups, kept by rows >= 3 (column 3) and rows >= 5 (column 5).
    CHECK(block_rows("ds_fixed(block=16, attention=\"unidirectional\")", 6, 16, 0) ==
          Rows{"100000", "110000", "111000", "111100", "000110", "000111"});
  }
  SECTION("fixed, unidirectional, G = 2 keeps blocks above the diagonal") {
    // L = 4, G = 2: f = 2; groups [2,4) kept by rows >= 2 and [6,8) by rows >= 6, so rows 2 and
    // 6 keep blocks 3 and 7 above their diagonal.
    CHECK(block_rows("ds_fixed(block=16, num_global_blocks=2, attention=\"unidirectional\")", 8, 16,
                     0) == Rows{"10000000", "11000000", "11110000", "11110000", "00111000",
                                "00111100", "00111111", "00111111"});
  }
  SECTION("fixed, per-head global offsets") {
    // P = 2: heads 0 and 2 use f = 3 (columns 3, 7), heads 1 and 3 use f = 2 (columns 2, 6).
    const std::string spec =
        "ds_fixed(block=16, different_layout_per_head=1, num_different_global_patterns=2)";
    const Rows h0{"11110001", "11110001", "11110001", "11110001",
                  "00011111", "00011111", "00011111", "00011111"};
    const Rows h1{"11110010", "11110010", "11110010", "11110010",
                  "00101111", "00101111", "00101111", "00101111"};
    CHECK(block_rows(spec, 8, 16, 0, 4) == h0);
    CHECK(block_rows(spec, 8, 16, 1, 4) == h1);
    CHECK(block_rows(spec, 8, 16, 2, 4) == h0);
    CHECK(block_rows(spec, 8, 16, 3, 4) == h1);
  }
  SECTION("variable, bidirectional, horizontal") {
    // Windows [0,2), [2,5), then windows of 3: [5,8). Block 0 global both ways.
    CHECK(block_rows("ds_variable(block=16, local_window_blocks=[2, 3], "
                     "horizontal_global_attention=1)",
                     8, 16, 0) == Rows{"11111111", "11000000", "10111000", "10111000", "10111000",
                                       "10000111", "10000111", "10000111"});
  }
  SECTION("variable, unidirectional, global range") {
    // Global range [1,3) kept by rows >= 1 (row 1 keeps block 2 above its diagonal).
    CHECK(block_rows("ds_variable(block=16, local_window_blocks=[2, 3], global_block_indices=[1], "
                     "global_block_end_indices=[3], attention=\"unidirectional\")",
                     8, 16, 0) == Rows{"10000000", "11100000", "01100000", "01110000", "01111000",
                                       "01100100", "01100110", "01100111"});
  }
  SECTION("bigbird without random blocks, both directions") {
    // w = 3 / 2 = 1; block 0 global both ways; unidirectional is the lower triangle of that.
    CHECK(block_rows("ds_bigbird(block=16, num_random_blocks=0)", 6, 16, 0) ==
          Rows{"111111", "111000", "111100", "101110", "100111", "100011"});
    CHECK(block_rows("ds_bigbird(block=16, num_random_blocks=0, attention=\"unidirectional\")", 6,
                     16, 0) == Rows{"100000", "110000", "111000", "101100", "100110", "100011"});
  }
  SECTION("bslongformer, both directions") {
    // Bidirectional, global range [0,1), w = 1 (the layout of xFormers' DeepSpeed-derived test).
    CHECK(block_rows("ds_bslongformer(block=16, global_block_end_indices=[1])", 8, 16, 0) ==
          Rows{"11111111", "11100000", "11110000", "10111000", "10011100", "10001110", "10000111",
               "10000011"});
    // Unidirectional, w = 5 / 2 = 2, global block 2: the lower triangle of window | row 2 |
    // column 2.
    CHECK(block_rows("ds_bslongformer(block=16, num_sliding_window_blocks=5, "
                     "global_block_indices=[2], attention=\"unidirectional\")",
                     6, 16, 0) == Rows{"100000", "110000", "111000", "011100", "001110", "001111"});
  }
  SECTION("local sliding window, both directions") {
    // Unidirectional: w = 1 block back and the diagonal (2 blocks, not a window of 3).
    CHECK(block_rows("ds_local(block=16)", 5, 16, 0) ==
          Rows{"10000", "11000", "01100", "00110", "00011"});
    // Bidirectional, W = 4: w = 2 each way.
    CHECK(block_rows("ds_local(block=16, num_sliding_window_blocks=4, attention=\"bidirectional\")",
                     5, 16, 0) == Rows{"11100", "11110", "11111", "01111", "00111"});
  }
  SECTION("dense") {
    CHECK(block_rows("ds_dense(block=32)", 3, 32, 0) == Rows{"111", "111", "111"});
  }
}

TEST_CASE("ds: fixed equals DeepSpeed's make_layout", "[deepspeed]") {
  int configs = 0;
  for (int L : {1, 2, 3, 4, 6})
    for (int G : {1, 2, 3})
      for (bool uni : {false, true})
        for (bool horizontal : {false, true})
          for (int P : {1, 2, 3}) {
            if (L % G != 0 || (uni && horizontal) || P > L / G) continue;
            const bool per_head = P > 1 || (L + G) % 2 == 0;
            const FixedCfg k{L, G, uni, horizontal, per_head, P};
            const int heads = per_head ? 3 : 2;
            for (std::int64_t nb : {1, 2, 5, 7, 12}) {
              const Dense3 want = oracle_fixed(k, heads, nb);
              check_pairs(fixed_spec(k, 16), want, 16, 16, 32, configs % 4 == 0);
              if (configs % 3 == 0) check_tiles(fixed_spec(k, 32), want, 32);
              ++configs;
            }
          }
  CHECK(configs > 100);
  // Other tilings: a DeepSpeed block larger than the tiles, smaller than the tiles, and one that
  // is not a tile size (cells straddle tiles).
  const FixedCfg k{4, 2, false, true, true, 2};
  const Dense3 want = oracle_fixed(k, 4, 9);
  check_pairs(fixed_spec(k, 64), want, 64, 16, 32);
  check_pairs(fixed_spec(k, 8), want, 8, 64, 32);
  check_pairs(fixed_spec(k, 24), want, 24, 16, 64);
  const FixedCfg u{4, 1, true, false, false, 1};
  check_pairs(fixed_spec(u, 48), oracle_fixed(u, 1, 7), 48, 32, 16);
}

TEST_CASE("ds: variable equals DeepSpeed's make_layout", "[deepspeed]") {
  using V = std::vector<std::int64_t>;
  const std::vector<V> windows{{4}, {1}, {2, 3}, {3, 0, 2}, {1, 2, 5}};
  const std::vector<std::pair<V, std::optional<V>>> globals{
      {{0}, std::nullopt}, {{}, std::nullopt}, {{1, 5, 30}, std::nullopt},
      {{0, 6}, V{2, 8}},   {{3}, V{100}},      {{2, 4}, V{3, 5}}};
  int configs = 0;
  for (const V& w : windows)
    for (const auto& [starts, ends] : globals)
      for (bool uni : {false, true})
        for (bool horizontal : {false, true}) {
          if (uni && horizontal) continue;
          const VariableCfg k{w, starts, ends, uni, horizontal, configs % 2 == 0};
          for (std::int64_t nb : {1, 4, 9, 13}) {
            const Dense3 want = oracle_variable(k, 2, nb);
            check_pairs(variable_spec(k, 16), want, 16, 32, 16, configs % 4 == 1);
            if (configs % 4 == 0) check_tiles(variable_spec(k, 16), want, 16);
            ++configs;
          }
        }
  CHECK(configs > 100);
  const VariableCfg k{{2, 3}, {0, 6}, V{2, 8}, false, true, false};
  check_pairs(variable_spec(k, 40), oracle_variable(k, 1, 11), 40, 64, 16);
}

TEST_CASE("ds: bigbird, bslongformer and local equal DeepSpeed's make_layout", "[deepspeed]") {
  using V = std::vector<std::int64_t>;
  int configs = 0;
  for (int W : {0, 1, 2, 3, 5, 8})
    for (int G : {0, 1, 3})
      for (bool uni : {false, true})
        for (std::int64_t nb : {1, 3, 8, 11}) {
          const BigBirdCfg k{W, G, uni, configs % 2 == 1};
          const Dense3 want = oracle_bigbird(k, 2, nb);
          check_pairs(bigbird_spec(k, 16), want, 16, 16, 16, configs % 4 == 0);
          if (configs % 3 == 0) check_tiles(bigbird_spec(k, 64), want, 64);
          ++configs;
        }
  const std::vector<std::pair<V, std::optional<V>>> globals{{{0}, std::nullopt},
                                                            {{}, std::nullopt},
                                                            {{2, 7, 50}, std::nullopt},
                                                            {{0, 5}, V{2, 9}},
                                                            {{4}, V{1000}}};
  for (int W : {0, 1, 3, 4, 7})
    for (const auto& [starts, ends] : globals)
      for (bool uni : {false, true})
        for (std::int64_t nb : {1, 6, 10}) {
          const LongformerCfg k{W, starts, ends, uni, configs % 2 == 0};
          const Dense3 want = oracle_bslongformer(k, 2, nb);
          check_pairs(bslongformer_spec(k, 16), want, 16, 32, 32, configs % 4 == 1);
          if (configs % 3 == 0) check_tiles(bslongformer_spec(k, 16), want, 16);
          ++configs;
        }
  for (int W : {0, 1, 2, 3, 4, 9})
    for (bool uni : {false, true})
      for (std::int64_t nb : {1, 5, 9, 14}) {
        const Dense3 want = oracle_local(W, uni, 3, nb);
        check_pairs(local_spec(W, uni, 16), want, 16, 16, 64, configs % 4 == 2);
        if (configs % 3 == 0) check_tiles(local_spec(W, uni, 128), want, 128);
        ++configs;
      }
  CHECK(configs > 150);
  // A DeepSpeed block that is not a tile size.
  const LongformerCfg k{5, {0, 5}, V{2, 9}, true, false};
  check_pairs(bslongformer_spec(k, 20), oracle_bslongformer(k, 1, 10), 20, 32, 16);
  // ds_dense.
  Dense3 ones(2, 6);
  std::fill(ones.v.begin(), ones.v.end(), 1);
  check_pairs("ds_dense(block=16)", ones, 16, 32, 32);
}

TEST_CASE("ds: random blocks follow DeepSpeed's placement, seeded and reproducible",
          "[deepspeed]") {
  // With a one-block window and no global block, the deterministic part is the diagonal alone:
  // each row then holds its num_random_blocks distinct random blocks plus the diagonal (which a
  // random block may coincide with).
  const std::int64_t nb = 40;
  const int block = 16, heads = 3;
  const std::int64_t n = nb * block;
  auto cells = [&](const std::string& spec, int threads) {
    BuildOptions opt;
    opt.threads = threads;
    const Layout layout = build_layout(*parse_spec(spec), Geometry{n, n, heads, 32, 16}, opt);
    Dense3 d(heads, nb);
    for (int h = 0; h < heads; ++h)
      for (std::int64_t r = 0; r < nb; ++r)
        for (std::int64_t c = 0; c < nb; ++c) {
          // All pairs of a cell agree (whole cells).
          const bool a = layout.head(h).allows(r * block, c * block);
          const bool b = layout.head(h).allows(r * block + block - 1, c * block + block - 1);
          REQUIRE(a == b);
          d.at(h, r, c) = a;
        }
    return d;
  };
  const std::string variable =
      "ds_variable(block=16, different_layout_per_head=1, num_random_blocks=3, "
      "local_window_blocks=[1], global_block_indices=[], attention=\"unidirectional\", seed=5)";
  const std::string bigbird =
      "ds_bigbird(block=16, different_layout_per_head=1, num_random_blocks=4, "
      "num_sliding_window_blocks=0, num_global_blocks=0, seed=5)";
  const std::string bigbird_uni =
      "ds_bigbird(block=16, different_layout_per_head=1, num_random_blocks=1, "
      "num_sliding_window_blocks=0, num_global_blocks=0, attention=\"unidirectional\", seed=5)";
  struct Case {
    std::string spec;
    std::int64_t r;
    bool lower_only;  // random blocks only at kb <= rb
  };
  for (const Case& k :
       {Case{variable, 3, false}, Case{bigbird, 4, false}, Case{bigbird_uni, 1, true}}) {
    INFO(k.spec);
    const Dense3 one = cells(k.spec, 1), two = cells(k.spec, 2);
    CHECK(one.v == two.v);
    std::int64_t above = 0;
    std::set<std::int64_t> hit;
    for (int h = 0; h < heads; ++h)
      for (std::int64_t r = 0; r < nb; ++r) {
        std::int64_t count = 0;
        for (std::int64_t c = 0; c < nb; ++c) {
          if (!one.get(h, r, c)) continue;
          ++count;
          if (c > r) ++above;
          if (c != r) hit.insert(c);
        }
        REQUIRE(one.get(h, r, r) == 1);
        // The row's random blocks plus the diagonal: r or r + 1 distinct blocks (fewer only
        // when the row has fewer candidates, as in row 0 of the unidirectional case).
        const std::int64_t candidates = k.lower_only ? r + 1 : nb;
        const std::int64_t lo = std::min(k.r, candidates);
        CHECK(count >= std::max<std::int64_t>(lo, 1));
        CHECK(count <= lo + 1);
      }
    if (k.lower_only) {
      CHECK(above == 0);
    } else {
      // DeepSpeed's Variable draws from the whole row even when unidirectional, BigBird
      // bidirectional too: some random blocks lie above the diagonal.
      CHECK(above > 0);
      CHECK(hit.size() > static_cast<std::size_t>(nb / 2));
    }
    // Heads draw their own blocks when different_layout_per_head.
    bool heads_differ = false;
    for (std::int64_t r = 0; r < nb; ++r)
      for (std::int64_t c = 0; c < nb; ++c) heads_differ |= one.get(0, r, c) != one.get(1, r, c);
    CHECK(heads_differ);
    // Another seed gives another layout.
    std::string reseeded = k.spec;
    reseeded.replace(reseeded.find("seed=5"), 6, "seed=6");
    CHECK(cells(reseeded, 2).v != one.v);
  }
  // Without different_layout_per_head every head has head 0's layout (one shared layout).
  const std::string shared =
      "ds_bigbird(block=16, num_random_blocks=2, num_sliding_window_blocks=1, seed=3)";
  const Dense3 s = cells(shared, 2);
  for (int h = 1; h < heads; ++h)
    for (std::int64_t r = 0; r < nb; ++r)
      for (std::int64_t c = 0; c < nb; ++c) REQUIRE(s.get(h, r, c) == s.get(0, r, c));
  // The deterministic part is kept exactly with random blocks on top.
  const BigBirdCfg det{1, 1, false, false};
  const Dense3 base = oracle_bigbird(det, heads, nb);
  for (int h = 0; h < heads; ++h)
    for (std::int64_t r = 0; r < nb; ++r) {
      std::int64_t extra = 0;
      for (std::int64_t c = 0; c < nb; ++c) {
        if (base.get(h, r, c)) REQUIRE(s.get(h, r, c) == 1);
        extra += s.get(h, r, c) && !base.get(h, r, c);
      }
      CHECK(extra <= 2);
    }
}

TEST_CASE("ds: rejected parameter combinations", "[deepspeed]") {
  struct Case {
    std::string spec;
    std::int64_t n;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases{
      {"ds_fixed(block=16, num_local_blocks=4, num_global_blocks=3)",
       64,
       {"num_local_blocks = 4", "num_global_blocks = 3", "divisible"}},
      {"ds_fixed(block=16, attention=\"causal\")", 64, {"attention", "causal", "unidirectional"}},
      {"ds_fixed(block=16, attention=\"unidirectional\", horizontal_global_attention=1)",
       64,
       {"horizontal_global_attention", "bidirectional"}},
      {"ds_fixed(block=16, num_different_global_patterns=2)",
       64,
       {"num_different_global_patterns = 2", "different_layout_per_head"}},
      {"ds_fixed(block=16, different_layout_per_head=1, num_different_global_patterns=5)",
       64,
       {"num_different_global_patterns = 5", "4 / 1 = 4"}},
      {"ds_fixed(block=16)", 100, {"100", "block = 16", "multiple"}},
      {"ds_variable(block=16, global_block_indices=[0, 4], global_block_end_indices=[2])",
       64,
       {"2 entries", "has 1"}},
      {"ds_variable(block=16, global_block_indices=[3], global_block_end_indices=[3])",
       64,
       {"start index 3", "end index 3"}},
      {"ds_variable(block=16, attention=\"unidirectional\", horizontal_global_attention=1)",
       64,
       {"horizontal_global_attention", "bidirectional"}},
      {"ds_variable(block=16, local_window_blocks=[])", 64, {"local_window_blocks", "empty"}},
      {"ds_variable(block=16, local_window_blocks=[2, 0])", 64, {"[2, 0]", "last"}},
      {"ds_bslongformer(block=16, global_block_indices=[1], global_block_end_indices=[0])",
       64,
       {"start index 1", "end index 0"}},
      {"ds_bslongformer(block=16, attention=\"forward\")", 64, {"forward"}},
      {"ds_local(block=16, attention=\"both\")", 64, {"both"}},
      {"ds_dense(block=16, num_heads=3)", 64, {"num_heads = 3", "2 heads"}},
      {"ds_variable(block=16, global_block_indices=[-1])", 64, {"global_block_indices", "-1"}},
  };
  for (const Case& k : cases) {
    INFO(k.spec);
    const std::string e = error_of(k.spec, k.n, 2);
    REQUIRE_FALSE(e.empty());
    for (const std::string& part : k.parts) {
      INFO("expected part: " << part << "\nerror: " << e);
      CHECK(contains(e, part));
    }
  }
  // nq != nk.
  try {
    build_layout(*parse_spec("ds_dense(block=16)"), Geometry{32, 64, 1, 16, 16});
    FAIL("nq != nk accepted");
  } catch (const UsageError& e) {
    CHECK(contains(e.what(), "nq = 32"));
    CHECK(contains(e.what(), "nk = 64"));
  }
  // Accepted edge cases.
  CHECK(error_of("ds_bigbird(block=16, num_random_blocks=4)", 64).empty());
  CHECK(error_of("ds_dense(block=16, num_heads=2)", 64, 2).empty());
}

TEST_CASE("ds: specs print canonically and round-trip", "[deepspeed]") {
  for (const std::string spec :
       {"ds_dense(block=16)", "ds_fixed(block=64)",
        "ds_fixed(block=32, num_heads=8, different_layout_per_head=1, num_local_blocks=8, "
        "num_global_blocks=2, horizontal_global_attention=1, num_different_global_patterns=3)",
        "ds_variable(block=16, num_random_blocks=2, local_window_blocks=[1, 2], "
        "global_block_indices=[0, 9], global_block_end_indices=[3, 12], "
        "attention=\"unidirectional\", seed=9)",
        "ds_bigbird(block=16, num_random_blocks=0, num_sliding_window_blocks=5)",
        "ds_bslongformer(block=128, global_block_indices=[], attention=\"unidirectional\")",
        "ds_local(block=16, num_sliding_window_blocks=7, attention=\"bidirectional\")"}) {
    const PatternPtr p = parse_spec(spec);
    CHECK(p->spec() == spec);
    CHECK(parse_spec(p->spec())->spec() == spec);
  }
  // Defaults are DeepSpeed's and are not printed; the block always is.
  CHECK(parse_spec("ds_fixed")->spec() == "ds_fixed(block=16)");
  CHECK(parse_spec("ds_fixed(16, different_layout_per_head=0, num_local_blocks=4, "
                   "attention=\"bidirectional\")")
            ->spec() == "ds_fixed(block=16)");
  CHECK(parse_spec("ds_local")->spec() == "ds_local(block=16)");
  CHECK(parse_spec("ds_bigbird")->spec() == "ds_bigbird(block=16)");
}

TEST_CASE("ds: long sequences build in time proportional to the kept blocks", "[deepspeed]") {
  // 2^20 tokens in 8192 blocks of 128: the layout of a local window of 3 blocks keeps
  // 8192 * 3 - 2 tiles (bidirectional, w = 1) of 128 x 128; a quadratic build would visit
  // 6.7e7 cells per head.
  const std::int64_t n = std::int64_t{1} << 20;
  const Layout layout = build_layout(
      *parse_spec("ds_local(block=128, attention=\"bidirectional\")"), Geometry{n, n, 1, 128, 128});
  CHECK(layout.counts().kept_tiles == 8192 * 3 - 2);
  CHECK(layout.counts().full_tiles == layout.counts().kept_tiles);
  // BigBird with random blocks at the same size: every row keeps at most 3 + 1 + 2 blocks,
  // plus the global row 0 with all 8192.
  const Layout bb = build_layout(*parse_spec("ds_bigbird(block=128, num_random_blocks=2)"),
                                 Geometry{n, n, 1, 128, 128});
  CHECK(bb.counts().kept_tiles <= 8191 * 6 + 8192);
  CHECK(bb.counts().kept_tiles >= 8191 * 3 + 8192);
}

// ---------------------------------------------------------------------------------------------
// DeepSpeed config files.

namespace {

struct TempDir : spattn::test::TempDir {
  TempDir() : spattn::test::TempDir("spattn_ds") {}
};

std::string write_file(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

std::string config_error(const std::string& text) {
  try {
    deepspeed_config_spec(text, "cfg.json");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

using spattn::test::CliResult;
using spattn::test::run_cli;

}  // namespace

TEST_CASE("ds: DeepSpeed config sections map to ds_* specs", "[deepspeed]") {
  // A whole config with a sparse_attention section.
  CHECK(deepspeed_config_spec(R"({"train_batch_size": 8, "sparse_attention": {"mode": "fixed",
      "block": 16, "different_layout_per_head": true, "num_local_blocks": 4,
      "num_global_blocks": 1, "attention": "bidirectional", "horizontal_global_attention": false,
      "num_different_global_patterns": 4}})",
                              "cfg.json") ==
        "ds_fixed(block=16, different_layout_per_head=1, num_different_global_patterns=4)");
  // A bare section; DeepSpeed's default mode is fixed and its default block 16.
  CHECK(deepspeed_config_spec("{}", "cfg.json") == "ds_fixed(block=16)");
  CHECK(deepspeed_config_spec(R"({"mode": "dense", "block": 32})", "x") == "ds_dense(block=32)");
  // DeepSpeed reads config files with hjson, so comments are accepted.
  CHECK(deepspeed_config_spec("{\"mode\": \"dense\", // the mode\n \"block\": /* tokens */ 64}",
                              "x") == "ds_dense(block=64)");
  CHECK(deepspeed_config_spec(R"({"mode": "variable", "num_random_blocks": 2,
      "local_window_blocks": [4, 8], "global_block_indices": [0, 16],
      "global_block_end_indices": null, "attention": "unidirectional"})",
                              "x") ==
        "ds_variable(block=16, num_random_blocks=2, local_window_blocks=[4, 8], "
        "global_block_indices=[0, 16], attention=\"unidirectional\")");
  // DeepSpeed's config default of num_random_blocks is 0 (the class default is 1).
  CHECK(deepspeed_config_spec(R"({"mode": "bigbird", "block": 64})", "x") ==
        "ds_bigbird(block=64, num_random_blocks=0)");
  CHECK(deepspeed_config_spec(R"({"mode": "bslongformer", "num_sliding_window_blocks": 5,
      "global_block_indices": [0, 4], "global_block_end_indices": [2, 6]})",
                              "x") ==
        "ds_bslongformer(block=16, num_sliding_window_blocks=5, global_block_indices=[0, 4], "
        "global_block_end_indices=[2, 6])");

  // Errors name the source and the key.
  auto has = [](const std::string& e, std::initializer_list<const char*> parts) {
    INFO(e);
    REQUIRE_FALSE(e.empty());
    for (const char* p : parts) CHECK(contains(e, p));
  };
  has(config_error("{\"mode\": \"fixed\",}"), {"cfg.json", "malformed JSON"});
  has(config_error("[1, 2]"), {"cfg.json", "object"});
  has(config_error(R"({"sparse_attention": 3})"), {"sparse_attention", "must be an object"});
  has(config_error(R"({"mode": "sparse"})"), {"unknown mode \"sparse\"", "bslongformer"});
  has(config_error(R"({"mode": 1})"), {"\"mode\" must be a string"});
  has(config_error(R"({"block": 16, "block": 32})"), {"cfg.json", "\"block\" appears twice"});
  has(config_error(R"({"blok": 16})"), {"cfg.json", "unknown key \"blok\"", "block"});
  has(config_error(R"({"mode": "bigbird", "attention": "unidirectional"})"),
      {"\"attention\"", "not read", "bigbird"});
  has(config_error(R"({"mode": "dense", "num_local_blocks": 4})"),
      {"\"num_local_blocks\"", "not read", "dense"});
  has(config_error(R"({"block": "16"})"), {"\"block\" must be an integer", "string \"16\""});
  has(config_error(R"({"block": 16.5})"), {"\"block\" must be an integer", "16.5"});
  has(config_error(R"({"different_layout_per_head": 1})"),
      {"\"different_layout_per_head\" must be true or false"});
  has(config_error(R"({"mode": "variable", "local_window_blocks": [4, "8"]})"),
      {"\"local_window_blocks\"[1] must be an integer"});
  has(config_error(R"({"mode": "variable", "global_block_end_indices": 3})"),
      {"\"global_block_end_indices\" must be an array of integers or null"});
  has(config_error(R"({"num_local_blocks": 4, "num_global_blocks": 3})"),
      {"cfg.json", "ds_fixed", "divisible"});
}

TEST_CASE("ds: deepspeed(file=...) behaves as the ds_* pattern of the file", "[deepspeed]") {
  TempDir dir;
  const std::string path = write_file(dir, "ds_config.json", R"({"sparse_attention": {
      "mode": "fixed", "block": 16, "num_local_blocks": 3, "num_global_blocks": 1,
      "attention": "unidirectional"}})");
  const std::string spec = "deepspeed(file=\"" + path + "\")";
  const PatternPtr p = parse_spec(spec);
  CHECK(p->spec() == spec);
  CHECK(parse_spec(p->spec())->spec() == spec);
  const FixedCfg k{3, 1, true, false, false, 1};
  check_pairs(spec, oracle_fixed(k, 2, 10), 16, 32, 16);

  const std::string bad = write_file(dir, "bad.json", R"({"mode": "fixed", "block": 0})");
  try {
    parse_spec("deepspeed(file=\"" + bad + "\")");
    FAIL("block = 0 accepted");
  } catch (const UsageError& e) {
    CHECK(contains(e.what(), "bad.json"));
    CHECK(contains(e.what(), "block"));
  }
  try {
    parse_spec("deepspeed(file=\"" + dir.file("missing.json") + "\")");
    FAIL("missing file accepted");
  } catch (const UsageError& e) {
    CHECK(contains(e.what(), "missing.json"));
    CHECK(contains(e.what(), "cannot open"));
  }
}

TEST_CASE("ds: spattn mask/stats --from-deepspeed", "[deepspeed][cli]") {
  TempDir dir;
  const std::string cfg = write_file(dir, "ds.json", R"({"train_batch_size": 4,
      "sparse_attention": {"mode": "bslongformer", "block": 16, "num_sliding_window_blocks": 3,
      "global_block_indices": [0], "global_block_end_indices": [1]}})");
  // stats: the mapped spec and the allowed pairs of the oracle layout.
  const CliResult s = run_cli("stats --from-deepspeed '" + cfg + "' --n 128 --heads 2 --json");
  INFO(s.err);
  REQUIRE(s.code == 0);
  const auto j = nlohmann::json::parse(s.out);
  CHECK(j["axes"]["spec"] == "ds_bslongformer(block=16, global_block_end_indices=[1])");
  const LongformerCfg k{3, {0}, std::vector<std::int64_t>{1}, false, false};
  const Dense3 want = oracle_bslongformer(k, 2, 8);
  std::int64_t cells = 0;
  for (int v : want.v) cells += v;
  CHECK(j["layout"]["allowed_pairs"].get<std::int64_t>() == cells * 16 * 16);

  // mask: block-level ASCII art of the layout; the mapping is reported on stderr.
  const CliResult m =
      run_cli("mask --from-deepspeed '" + cfg + "' --n 128 --block 16 --level block --head 0");
  INFO(m.err);
  REQUIRE(m.code == 0);
  CHECK(contains(m.err, "ds_bslongformer(block=16, global_block_end_indices=[1])"));
  // The first row of tiles is a global row: all 8 tiles kept.
  CHECK(contains(m.out, "########"));

  // Bad files and bad usage exit 2 with the reason.
  const std::string bad = write_file(dir, "bad.json", R"({"sparse_attention": {"mode": "fixd"}})");
  CliResult e = run_cli("stats --from-deepspeed '" + bad + "' --n 128");
  CHECK(e.code == 2);
  CHECK(contains(e.err, "unknown mode \"fixd\""));
  CHECK(contains(e.err, "bad.json"));
  const std::string broken = write_file(dir, "broken.json", "{\"block\": 16");
  e = run_cli("mask --from-deepspeed '" + broken + "' --n 128");
  CHECK(e.code == 2);
  CHECK(contains(e.err, "malformed JSON"));
  e = run_cli("stats --from-deepspeed '" + dir.file("none.json") + "' --n 128");
  CHECK(e.code == 2);
  CHECK(contains(e.err, "cannot open"));
  e = run_cli("stats --from-deepspeed '" + cfg + "' --n 120");  // not a multiple of 16
  CHECK(e.code == 2);
  CHECK(contains(e.err, "multiple of block = 16"));
  e = run_cli("stats causal --from-deepspeed '" + cfg + "' --n 128");
  CHECK(e.code == 2);
  CHECK(contains(e.err, "--from-deepspeed"));
  e = run_cli("stats --n 128");
  CHECK(e.code == 2);
  CHECK(contains(e.err, "--from-deepspeed"));
}
