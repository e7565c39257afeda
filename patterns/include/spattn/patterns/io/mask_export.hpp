#pragma once
// Mask export: a Layout's allowed pairs as arrays (.npy), ASCII art and PNG pictures.
//
// Everything here reads the Layout's tiles (CSR rows, Full tiles, Partial bitsets), never
// Pattern::allows, so what is exported is exactly what an executor computes. Two levels:
// - element: one value per (query, key) pair, shape [heads, nq, nk]; O(heads * nq * nk), so it is
//   refused above a size limit;
// - block: one value per tile, shape [heads, q_blocks, k_blocks] (DeepSpeed/Triton's block-sparse
//   layout shape, and what the `blocks(file=...)` pattern reads back).
// `head` arguments select one head (0 <= head < heads; the arrays then have a leading dimension
// of 1) or all heads (-1).
#include <cstdint>
#include <string>
#include <vector>

#include "spattn/patterns/layout.hpp"

namespace spattn {

enum class MaskLevel { Element, Block };

// Default limits (elements of the exported array, characters, pixels).
inline constexpr std::int64_t kMaxElementMaskElements = std::int64_t{1} << 28;
inline constexpr std::int64_t kMaxBlockMaskCells = std::int64_t{1} << 30;
inline constexpr std::int64_t kMaxAsciiElementSide = 256;  // element-level art: nq, nk <= 256
inline constexpr std::int64_t kMaxAsciiColumns = 128;      // block-level art: wider is downsampled
inline constexpr std::int64_t kMaxPngSide = 4096;          // pixels per head, each direction

// A C-order uint8 array (1 = allowed / kept, 0 = not).
struct MaskArray {
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> data;  // prod(shape) bytes
};

// Element mask, uint8 [H, nq, nk] with H = heads (head = -1) or 1: data[(h * nq + i) * nk + j] = 1
// when query i may attend to key j on head h. Throws BudgetError (naming the size and suggesting
// the block level) when H * nq * nk > max_elements, UsageError on a bad head.
MaskArray element_mask(const Layout& layout, int head = -1,
                       std::int64_t max_elements = kMaxElementMaskElements);

// Block mask, uint8 [H, q_blocks, k_blocks] (blocks of block_q queries x block_k keys): 1 where
// the tile is kept (Full or Partial: at least one pair allowed). Throws BudgetError when
// H * q_blocks * k_blocks > max_cells, UsageError on a bad head.
MaskArray block_mask(const Layout& layout, int head = -1,
                     std::int64_t max_cells = kMaxBlockMaskCells);

// Writes element_mask / block_mask to `path` as .npy (dtype |u1, C order). Returns the shape.
std::vector<std::int64_t> write_element_mask_npy(
    const std::string& path, const Layout& layout, int head = -1,
    std::int64_t max_elements = kMaxElementMaskElements);
std::vector<std::int64_t> write_block_mask_npy(const std::string& path, const Layout& layout,
                                               int head = -1,
                                               std::int64_t max_cells = kMaxBlockMaskCells);

// ASCII art: a title line, a legend line, then one picture per distinct head layout among the
// selected heads, each headed by the heads that use it ("head 2:", "heads 0..3, 6:").
// - Block level: one character per tile, '#' Full, '+' Partial, '.' Empty; rows are query blocks.
//   When the picture would be wider or taller than max_columns tiles, each character covers
//   f x f tiles (f = ceil(max(q_blocks, k_blocks) / max_columns)): '#' when every pair of its
//   region is allowed, '.' when none is, '+' otherwise. Cost O(kept tiles + characters).
// - Element level: one character per pair, '#' allowed, '.' not; rows are queries. Throws
//   UsageError (naming the block level) when nq or nk > max_element_side.
std::string mask_ascii(const Layout& layout, MaskLevel level, int head = -1,
                       std::int64_t max_columns = kMaxAsciiColumns,
                       std::int64_t max_element_side = kMaxAsciiElementSide);

// PNG picture (8-bit; grayscale for one head, RGB when several heads are placed side by side
// with a red separator column between them, in head order, or with a legend).
// - Element level: element (j, i) black when allowed, white when not; one head's picture is
//   nk x nq cells. Throws UsageError (naming the block level) when nq or nk > max_side.
// - Block level: one cell per tile, black Full, gray (128) Partial, white Empty; downsampled as
//   in mask_ascii (f = ceil(max(q_blocks, k_blocks) / max_side)) when larger than max_side.
// Each cell is scale x scale pixels (scale 0: the largest scale, 1..32, that keeps a head's
// picture within kAutoScaleSide pixels, at least 1); the separator is max(2, scale / 2) pixels
// wide. With `legend`, the image gains, with t = 2 when the panels are at least 512 pixels wide
// and 1 otherwise: above the panels, when there are several, a strip of 11t pixels with each
// panel's head ("head 3", or "3" where that does not fit) at (panel's x, 2t) in a 5 x 7 font of
// t-pixel dots; below them a strip of 13t pixels holding, from x = 2t, each legend item: a 7t
// square swatch at y = 3t (a 1-pixel gray (96) border) followed 3t later by its text, then 8t of
// space: "kept, full" (black), "kept, partial" (gray), "empty" (white) at block level,
// "allowed", "not allowed" at element level, "head separator" (red) with several heads, and a
// text "each cell: f x f tiles" when downsampled. The image is widened (white) when the legend
// is wider than the panels. Throws UsageError when the scale is out of range, a scaled head
// picture exceeds kMaxPngScaledSide or the combined width 1,000,000 pixels (select one head),
// and Error when the file cannot be written. Rows are streamed: memory O(width + tiles). Returns
// the image size in pixels, the scale used and the y of the panels' first row.
struct ImageSize {
  std::int64_t width = 0, height = 0;
  std::int64_t scale = 1;  // pixels per cell, each way
  std::int64_t top = 0;    // first row of the panels (below the head labels)
};
inline constexpr std::int64_t kMaxPngScale = 64;
inline constexpr std::int64_t kAutoScaleSide = 256;
inline constexpr std::int64_t kMaxPngScaledSide = 16384;
struct MaskPngOptions {
  std::int64_t scale = 1;               // pixels per cell each way, 1..kMaxPngScale; 0: automatic
  bool legend = false;                  // head labels above, legend strip below
  std::int64_t max_side = kMaxPngSide;  // cells per head and side before downsampling/refusal
};
ImageSize write_mask_png(const std::string& path, const Layout& layout, MaskLevel level, int head,
                         const MaskPngOptions& options);
// The picture alone at scale 1 (no legend).
ImageSize write_mask_png(const std::string& path, const Layout& layout, MaskLevel level,
                         int head = -1, std::int64_t max_side = kMaxPngSide);

// "head 3" or "heads 0..3, 6": the label used above pictures.
std::string describe_heads(const std::vector<int>& heads);

}  // namespace spattn
