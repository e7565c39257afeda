#pragma once
// A 5 x 7 pixel font for the labels and legends of mask pictures (internal to io/): lower-case
// letters, digits, space and . , : - / ( ) x; other characters draw as a box.
#include <cstdint>
#include <string_view>

namespace spattn::font {

inline constexpr int kGlyphWidth = 5, kGlyphHeight = 7, kAdvance = 6;  // pixels, at size 1

// Row r (0 = top) of the glyph of c: 5 bits, bit 4 the leftmost pixel.
std::uint8_t glyph_row(char c, int r);

// Width of `text` in pixels at pixel size `size` (no trailing gap).
inline std::int64_t text_width(std::string_view text, int size) {
  return text.empty() ? 0 : (static_cast<std::int64_t>(text.size()) * kAdvance - 1) * size;
}

// Draws `text` into an RGB canvas of `width` pixels per row, top-left at (x, y), each font pixel
// a size x size square of color rgb; pixels outside [0, width) x [0, height) are clipped.
void draw_text(std::uint8_t* rgb, std::int64_t width, std::int64_t height, std::int64_t x,
               std::int64_t y, std::string_view text, int size, const std::uint8_t color[3]);

}  // namespace spattn::font
