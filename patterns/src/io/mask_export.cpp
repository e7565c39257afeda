#include "spattn/patterns/io/mask_export.hpp"

#include <fmt/format.h>
#include <png.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>

#include "bitmap_font.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"

namespace spattn {
namespace {

constexpr std::uint8_t kCellEmpty = 0, kCellFull = 1, kCellPartial = 2;
// Widest PNG we write: libpng's default user limit (png_set_user_limits) for readers.
constexpr std::int64_t kMaxPngWidth = 1000000;

void check_head(const Layout& layout, int head) {
  if (head < -1 || head >= layout.geometry.heads)
    throw UsageError(fmt::format("head {} is out of range: allowed -1 (all heads) or 0..{}", head,
                                 layout.geometry.heads - 1));
}

std::vector<int> selected_heads(const Layout& layout, int head) {
  check_head(layout, head);
  if (head >= 0) return {head};
  std::vector<int> out(static_cast<std::size_t>(layout.geometry.heads));
  for (int h = 0; h < layout.geometry.heads; ++h) out[static_cast<std::size_t>(h)] = h;
  return out;
}

// a * b * c saturated at int64 max (sizes here are positive).
std::int64_t product(std::int64_t a, std::int64_t b, std::int64_t c) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  if (a != 0 && b > kMax / a) return kMax;
  const std::int64_t ab = a * b;
  if (ab != 0 && c > kMax / ab) return kMax;
  return ab * c;
}

// Writes row i of a head's element mask into out[0, nk): 1 allowed, 0 not. O(nk + kept tiles of
// the row's block row + their bits).
void decode_row(const BlockLayout& L, std::int64_t i, std::uint8_t* out) {
  std::fill(out, out + L.nk(), std::uint8_t{0});
  const std::int64_t r = i / L.block_q();
  const auto row_ptr = L.row_ptr();
  const auto cols = L.col_index();
  const auto masks = L.mask_index();
  const std::int64_t bit_row = i - r * L.block_q();
  for (std::int64_t t = row_ptr[r]; t < row_ptr[r + 1]; ++t) {
    const Tile tile = L.tile(r, cols[t]);
    if (masks[t] < 0) {
      std::fill(out + tile.k_begin, out + tile.k_end, std::uint8_t{1});
      continue;
    }
    const std::uint64_t* bits = L.mask(masks[t]) + bit_row * L.mask_row_words();
    for (int w = 0; w < L.mask_row_words(); ++w) {
      for (std::uint64_t word = bits[w]; word != 0; word &= word - 1) {
        const std::int64_t c = std::int64_t{w} * 64 + std::countr_zero(word);
        out[tile.k_begin + c] = 1;
      }
    }
  }
}

// Classifies the cells of a (possibly downsampled) tile grid one cell row at a time: cell (R, C)
// covers query blocks [R f, R f + f) x key blocks [C f, C f + f) and is Full when every pair of
// that region is allowed, Empty when none is, Partial otherwise. With f = 1 the cells are the
// tiles. Cost per cell row: O(kept tiles in its block rows + columns).
class CellRows {
 public:
  CellRows(const BlockLayout& L, std::int64_t f)
      : L_(L), f_(f), rows_((L.q_blocks() + f - 1) / f), cols_((L.k_blocks() + f - 1) / f) {
    mask_pop_.resize(static_cast<std::size_t>(L.distinct_masks()));
    for (std::int64_t m = 0; m < L.distinct_masks(); ++m) {
      const std::uint64_t* bits = L.mask(static_cast<std::int32_t>(m));
      std::int64_t n = 0;
      for (std::int64_t w = 0; w < L.mask_words(); ++w) n += std::popcount(bits[w]);
      mask_pop_[static_cast<std::size_t>(m)] = n;
    }
    counts_.resize(static_cast<std::size_t>(cols_));
  }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }

  // Fills out[0, cols()) with kCellEmpty / kCellFull / kCellPartial for cell row R.
  void row(std::int64_t R, std::uint8_t* out) {
    std::fill(counts_.begin(), counts_.end(), 0);
    const auto row_ptr = L_.row_ptr();
    const auto cols = L_.col_index();
    const auto masks = L_.mask_index();
    const std::int64_t r0 = R * f_, r1 = std::min(L_.q_blocks(), r0 + f_);
    for (std::int64_t r = r0; r < r1; ++r) {
      for (std::int64_t t = row_ptr[r]; t < row_ptr[r + 1]; ++t) {
        const std::int64_t n = masks[t] < 0 ? L_.tile(r, cols[t]).area()
                                            : mask_pop_[static_cast<std::size_t>(masks[t])];
        counts_[static_cast<std::size_t>(cols[t] / f_)] += n;
      }
    }
    const std::int64_t q0 = r0 * L_.block_q(), q1 = std::min(L_.nq(), r1 * L_.block_q());
    for (std::int64_t C = 0; C < cols_; ++C) {
      const std::int64_t k0 = C * f_ * L_.block_k();
      const std::int64_t k1 = std::min(L_.nk(), (C + 1) * f_ * L_.block_k());
      const std::int64_t n = counts_[static_cast<std::size_t>(C)];
      out[C] = n == 0 ? kCellEmpty : n == (q1 - q0) * (k1 - k0) ? kCellFull : kCellPartial;
    }
  }

 private:
  const BlockLayout& L_;
  std::int64_t f_, rows_, cols_;
  std::vector<std::int64_t> mask_pop_, counts_;
};

// Downsampling factor so that neither side of the tile grid exceeds `limit` cells.
std::int64_t downsample_factor(const Geometry& g, std::int64_t limit) {
  const std::int64_t side = std::max(g.q_blocks(), g.k_blocks());
  return std::max<std::int64_t>(1, (side + limit - 1) / limit);
}

// Groups of selected heads sharing one distinct layout, ordered by first head.
struct HeadGroup {
  int distinct;
  std::vector<int> heads;
};
std::vector<HeadGroup> group_heads(const Layout& layout, const std::vector<int>& heads) {
  std::vector<HeadGroup> groups;
  for (int h : heads) {
    const int d = layout.head_to_distinct[static_cast<std::size_t>(h)];
    auto it = std::find_if(groups.begin(), groups.end(),
                           [d](const HeadGroup& g) { return g.distinct == d; });
    if (it == groups.end())
      groups.push_back({d, {h}});
    else
      it->heads.push_back(h);
  }
  return groups;
}

// libpng reports errors through a callback that must not return; it longjmps back to
// write_png_rows, which has no automatic objects with destructors between setjmp and the jump.
struct PngErrorState {
  std::jmp_buf jump;
  char message[512];
};

[[noreturn]] void png_error_to_jump(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngErrorState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", message);
  std::longjmp(state->jump, 1);
}
void png_ignore_warning(png_structp, png_const_charp) {}

// Writes an 8-bit PNG of width x height pixels (channels 1 = gray, 3 = RGB); fill(y, row) writes
// row y (width * channels bytes) and must not throw.
void write_png_rows(const std::string& path, std::int64_t width, std::int64_t height, int channels,
                    const std::function<void(std::int64_t, std::uint8_t*)>& fill) {
  std::vector<std::uint8_t> row(static_cast<std::size_t>(width * channels));
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr)
    throw Error(fmt::format("{}: cannot create file: {}", path, std::strerror(errno)));
  PngErrorState state{};
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, png_error_to_jump, png_ignore_warning);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  if (png == nullptr || info == nullptr) {
    png_destroy_write_struct(&png, &info);
    std::fclose(file);
    throw Error(fmt::format("{}: libpng could not allocate its state", path));
  }
  if (setjmp(state.jump) != 0) {
    png_destroy_write_struct(&png, &info);
    std::fclose(file);
    std::remove(path.c_str());
    throw Error(fmt::format("{}: writing the PNG failed: {}", path, state.message));
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (std::int64_t y = 0; y < height; ++y) {
    fill(y, row.data());
    png_write_row(png, row.data());
  }
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  if (std::fclose(file) != 0) throw Error(fmt::format("{}: write failed", path));
}

}  // namespace

std::string describe_heads(const std::vector<int>& heads) {
  std::vector<std::string> parts;
  for (std::size_t k = 0; k < heads.size();) {
    std::size_t e = k;
    while (e + 1 < heads.size() && heads[e + 1] == heads[e] + 1) ++e;
    parts.push_back(e == k ? fmt::format("{}", heads[k])
                           : fmt::format("{}..{}", heads[k], heads[e]));
    k = e + 1;
  }
  return fmt::format("{} {}", heads.size() == 1 ? "head" : "heads", fmt::join(parts, ", "));
}

MaskArray element_mask(const Layout& layout, int head, std::int64_t max_elements) {
  const Geometry& g = layout.geometry;
  const std::vector<int> heads = selected_heads(layout, head);
  const auto H = static_cast<std::int64_t>(heads.size());
  const std::int64_t total = product(H, g.nq, g.nk);
  if (total > max_elements)
    throw BudgetError(fmt::format(
        "an element mask of [{}, {}, {}] = {} elements ({:.3g} GB as uint8) exceeds the limit of "
        "{} elements; export the block layout instead with --level block ([{}, {}, {}] cells){}, "
        "or raise the limit with --max-elements",
        H, g.nq, g.nk, total, static_cast<double>(total) / 1e9, max_elements, H, g.q_blocks(),
        g.k_blocks(), H > 1 ? ", select one head with --head" : ""));
  MaskArray out;
  out.shape = {H, g.nq, g.nk};
  out.data.resize(static_cast<std::size_t>(total));
  const std::size_t plane = static_cast<std::size_t>(g.nq * g.nk);
  std::vector<std::int64_t> first_slot(layout.distinct.size(), -1);
  for (std::int64_t s = 0; s < H; ++s) {
    const int h = heads[static_cast<std::size_t>(s)];
    const auto d = static_cast<std::size_t>(layout.head_to_distinct[static_cast<std::size_t>(h)]);
    std::uint8_t* dst = out.data.data() + static_cast<std::size_t>(s) * plane;
    if (first_slot[d] >= 0) {  // a head sharing its layout with an earlier one: copy its plane
      std::copy_n(out.data.data() + static_cast<std::size_t>(first_slot[d]) * plane, plane, dst);
      continue;
    }
    first_slot[d] = s;
    const BlockLayout& L = layout.head(h);
    for (std::int64_t i = 0; i < g.nq; ++i) decode_row(L, i, dst + i * g.nk);
  }
  return out;
}

MaskArray block_mask(const Layout& layout, int head, std::int64_t max_cells) {
  const Geometry& g = layout.geometry;
  const std::vector<int> heads = selected_heads(layout, head);
  const auto H = static_cast<std::int64_t>(heads.size());
  const std::int64_t qb = g.q_blocks(), kb = g.k_blocks();
  const std::int64_t total = product(H, qb, kb);
  if (total > max_cells)
    throw BudgetError(fmt::format(
        "a block mask of [{}, {}, {}] = {} cells exceeds the limit of {} cells; use larger "
        "blocks{} or raise the limit with --max-elements",
        H, qb, kb, total, max_cells, H > 1 ? ", select one head with --head" : ""));
  MaskArray out;
  out.shape = {H, qb, kb};
  out.data.assign(static_cast<std::size_t>(total), 0);
  for (std::int64_t s = 0; s < H; ++s) {
    const BlockLayout& L = layout.head(heads[static_cast<std::size_t>(s)]);
    const auto row_ptr = L.row_ptr();
    const auto cols = L.col_index();
    std::uint8_t* dst = out.data.data() + static_cast<std::size_t>(s * qb * kb);
    for (std::int64_t r = 0; r < qb; ++r)
      for (std::int64_t t = row_ptr[r]; t < row_ptr[r + 1]; ++t) dst[r * kb + cols[t]] = 1;
  }
  return out;
}

std::vector<std::int64_t> write_element_mask_npy(const std::string& path, const Layout& layout,
                                                 int head, std::int64_t max_elements) {
  const MaskArray m = element_mask(layout, head, max_elements);
  write_npy(path, "|u1", m.shape, m.data.data(), m.data.size());
  return m.shape;
}

std::vector<std::int64_t> write_block_mask_npy(const std::string& path, const Layout& layout,
                                               int head, std::int64_t max_cells) {
  const MaskArray m = block_mask(layout, head, max_cells);
  write_npy(path, "|u1", m.shape, m.data.data(), m.data.size());
  return m.shape;
}

std::string mask_ascii(const Layout& layout, MaskLevel level, int head, std::int64_t max_columns,
                       std::int64_t max_element_side) {
  const Geometry& g = layout.geometry;
  const std::vector<HeadGroup> groups = group_heads(layout, selected_heads(layout, head));
  std::string out;
  if (level == MaskLevel::Element) {
    if (g.nq > max_element_side || g.nk > max_element_side)
      throw UsageError(fmt::format(
          "element-level ASCII art is limited to {} x {} pairs, but the mask has {} queries x {} "
          "keys; use --level block (one character per tile), --format png or --format npy",
          max_element_side, max_element_side, g.nq, g.nk));
    out += fmt::format("element mask of {} at {}\n", layout.spec, g.describe());
    out += "legend: '#' allowed, '.' not allowed; rows are queries, columns are keys\n";
    std::vector<std::uint8_t> row(static_cast<std::size_t>(g.nk));
    for (const HeadGroup& grp : groups) {
      out += describe_heads(grp.heads) + ":\n";
      const BlockLayout& L = *layout.distinct[static_cast<std::size_t>(grp.distinct)];
      for (std::int64_t i = 0; i < g.nq; ++i) {
        decode_row(L, i, row.data());
        for (std::uint8_t v : row) out += v != 0 ? '#' : '.';
        out += '\n';
      }
    }
    return out;
  }
  if (max_columns < 1) throw UsageError("mask_ascii: max_columns must be at least 1");
  const std::int64_t f = downsample_factor(g, max_columns);
  out += fmt::format("block layout of {} at {}\n", layout.spec, g.describe());
  if (f == 1)
    out += fmt::format(
        "legend: '#' full tile, '+' partial tile, '.' empty tile; rows are blocks of {} queries, "
        "columns blocks of {} keys\n",
        g.block_q, g.block_k);
  else
    out += fmt::format(
        "legend: each character covers {} x {} tiles ({} queries x {} keys): '#' every pair "
        "allowed, '+' some, '.' none\n",
        f, f, f * g.block_q, f * g.block_k);
  for (const HeadGroup& grp : groups) {
    out += describe_heads(grp.heads) + ":\n";
    CellRows cells(*layout.distinct[static_cast<std::size_t>(grp.distinct)], f);
    std::vector<std::uint8_t> row(static_cast<std::size_t>(cells.cols()));
    for (std::int64_t R = 0; R < cells.rows(); ++R) {
      cells.row(R, row.data());
      for (std::uint8_t v : row) out += v == kCellFull ? '#' : v == kCellPartial ? '+' : '.';
      out += '\n';
    }
  }
  return out;
}

ImageSize write_mask_png(const std::string& path, const Layout& layout, MaskLevel level, int head,
                         std::int64_t max_side) {
  MaskPngOptions o;
  o.max_side = max_side;
  return write_mask_png(path, layout, level, head, o);
}

ImageSize write_mask_png(const std::string& path, const Layout& layout, MaskLevel level, int head,
                         const MaskPngOptions& o) {
  const Geometry& g = layout.geometry;
  const std::vector<int> heads = selected_heads(layout, head);
  const std::int64_t max_side = o.max_side;
  if (max_side < 1) throw UsageError("write_mask_png: max_side must be at least 1");
  if (o.scale < 0 || o.scale > kMaxPngScale)
    throw UsageError(fmt::format("scale {} is not allowed: use 1..{} pixels per cell, or 0 (auto)",
                                 o.scale, kMaxPngScale));
  if (level == MaskLevel::Element && (g.nq > max_side || g.nk > max_side))
    throw UsageError(fmt::format(
        "element-level PNG is limited to {} x {} pixels per head, but the mask has {} queries x "
        "{} keys; use --level block (one pixel per tile, downsampled when large)",
        max_side, max_side, g.nq, g.nk));
  const std::int64_t f = level == MaskLevel::Block ? downsample_factor(g, max_side) : 1;

  // Per distinct layout used: a producer of its rows (element rows or cell rows).
  const std::vector<HeadGroup> groups = group_heads(layout, heads);
  std::vector<CellRows> cell_rows;
  std::int64_t w = g.nk, h = g.nq;
  if (level == MaskLevel::Block) {
    for (const HeadGroup& grp : groups)
      cell_rows.emplace_back(*layout.distinct[static_cast<std::size_t>(grp.distinct)], f);
    w = cell_rows.front().cols();
    h = cell_rows.front().rows();
  }
  const std::int64_t scale =
      o.scale > 0 ? o.scale : std::clamp<std::int64_t>(kAutoScaleSide / std::max(w, h), 1, 32);
  if (std::max(w, h) * scale > kMaxPngScaledSide)
    throw UsageError(fmt::format(
        "scale {} makes each head's picture {} x {} pixels, more than {} on a side; use a "
        "smaller scale",
        scale, w * scale, h * scale, kMaxPngScaledSide));
  const auto n_panels = static_cast<std::int64_t>(heads.size());
  const std::int64_t sep = std::max<std::int64_t>(2, scale / 2);
  const std::int64_t panels_width = n_panels * w * scale + (n_panels - 1) * sep;
  if (panels_width > kMaxPngWidth)
    throw UsageError(fmt::format(
        "a PNG of {} heads side by side would be {} pixels wide (the limit is {}); select one "
        "head with --head",
        n_panels, panels_width, kMaxPngWidth));

  // Legend and head labels, drawn into two small RGB strips.
  const int t = panels_width >= 512 ? 2 : 1;  // text size
  struct Item {
    std::uint8_t rgb[3];
    std::string text;
    bool swatch;
  };
  std::vector<Item> items;
  if (o.legend) {
    if (level == MaskLevel::Block) {
      items.push_back({{0, 0, 0}, "kept, full", true});
      items.push_back({{128, 128, 128}, "kept, partial", true});
      items.push_back({{255, 255, 255}, "empty", true});
    } else {
      items.push_back({{0, 0, 0}, "allowed", true});
      items.push_back({{255, 255, 255}, "not allowed", true});
    }
    if (n_panels > 1) items.push_back({{255, 0, 0}, "head separator", true});
    if (f > 1) items.push_back({{0, 0, 0}, fmt::format("each cell: {} x {} tiles", f, f), false});
  }
  std::int64_t legend_width = 0;
  for (const Item& it : items)
    legend_width += (it.swatch ? 10 * t : 0) + font::text_width(it.text, t) + 8 * t;
  const std::int64_t width = std::max(panels_width, o.legend ? legend_width + 2 * t : 0);
  const std::int64_t top = o.legend && n_panels > 1 ? 11 * t : 0;
  const std::int64_t bottom = o.legend ? 13 * t : 0;
  const std::int64_t height = top + h * scale + bottom;
  const int channels = n_panels == 1 && !o.legend ? 1 : 3;
  const std::uint8_t ink[3] = {0, 0, 0};
  std::vector<std::uint8_t> head_strip(static_cast<std::size_t>(width * top * 3), 255);
  for (std::int64_t s = 0; s < n_panels && top > 0; ++s) {
    std::string label = fmt::format("head {}", heads[static_cast<std::size_t>(s)]);
    if (font::text_width(label, t) > w * scale) label = label.substr(5);
    font::draw_text(head_strip.data(), width, top, s * (w * scale + sep), 2 * t, label, t, ink);
  }
  std::vector<std::uint8_t> legend_strip(static_cast<std::size_t>(width * bottom * 3), 255);
  std::int64_t x = 2 * t;
  for (const Item& it : items) {
    if (it.swatch) {  // a 7t square with a gray border
      for (std::int64_t dy = 0; dy < 7 * t; ++dy)
        for (std::int64_t dx = 0; dx < 7 * t; ++dx) {
          const bool edge = dx == 0 || dy == 0 || dx == 7 * t - 1 || dy == 7 * t - 1;
          std::uint8_t* p = legend_strip.data() + ((3 * t + dy) * width + x + dx) * 3;
          for (int c = 0; c < 3; ++c) p[c] = edge ? 96 : it.rgb[c];
        }
      x += 10 * t;
    }
    font::draw_text(legend_strip.data(), width, bottom, x, 3 * t, it.text, t, ink);
    x += font::text_width(it.text, t) + 8 * t;
  }

  // Panel slot s shows head heads[s], whose layout is group panel_group[s].
  std::vector<std::size_t> panel_group(heads.size());
  for (std::size_t k = 0; k < groups.size(); ++k)
    for (int hd : groups[k].heads)
      panel_group[static_cast<std::size_t>(std::find(heads.begin(), heads.end(), hd) -
                                           heads.begin())] = k;
  std::vector<std::uint8_t> group_rows(groups.size() * static_cast<std::size_t>(w));
  auto shade = [level](std::uint8_t v) -> std::uint8_t {
    if (level == MaskLevel::Element) return v != 0 ? 0 : 255;
    return v == kCellFull ? 0 : v == kCellPartial ? 128 : 255;
  };
  write_png_rows(path, width, height, channels, [&](std::int64_t y, std::uint8_t* row) {
    const std::size_t row_bytes = static_cast<std::size_t>(width * channels);
    if (y < top || y >= top + h * scale) {
      const std::uint8_t* src = y < top ? head_strip.data() + y * width * 3
                                        : legend_strip.data() + (y - top - h * scale) * width * 3;
      std::copy(src, src + row_bytes, row);
      return;
    }
    const std::int64_t cy = (y - top) / scale;
    if ((y - top) % scale == 0)
      for (std::size_t k = 0; k < groups.size(); ++k) {
        std::uint8_t* dst = group_rows.data() + k * static_cast<std::size_t>(w);
        if (level == MaskLevel::Element)
          decode_row(*layout.distinct[static_cast<std::size_t>(groups[k].distinct)], cy, dst);
        else
          cell_rows[k].row(cy, dst);
      }
    std::fill(row, row + row_bytes, std::uint8_t{255});
    std::uint8_t* px = row;
    for (std::size_t s = 0; s < heads.size(); ++s) {
      if (s > 0) {
        for (std::int64_t k = 0; k < sep; ++k) {
          *px++ = 255;
          *px++ = 0;
          *px++ = 0;
        }
      }
      const std::uint8_t* src = group_rows.data() + panel_group[s] * static_cast<std::size_t>(w);
      for (std::int64_t cx = 0; cx < w; ++cx) {
        const std::uint8_t v = shade(src[cx]);
        for (std::int64_t k = 0; k < scale * channels; ++k) *px++ = v;
      }
    }
  });
  return {width, height, scale, top};
}

}  // namespace spattn
