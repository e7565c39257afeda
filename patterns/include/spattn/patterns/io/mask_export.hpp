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
// with a 2-pixel red separator column between them, in head order).
// - Element level: pixel (x = j, y = i) black when allowed, white when not; one head's picture is
//   nk x nq pixels. Throws UsageError (naming the block level) when nq or nk > max_side.
// - Block level: one pixel per tile, black Full, gray (128) Partial, white Empty; downsampled as
//   in mask_ascii (f = ceil(max(q_blocks, k_blocks) / max_side)) when larger than max_side.
// Throws UsageError when the combined width exceeds 1,000,000 pixels (select one head) and
// Error when the file cannot be written. Rows are streamed: memory O(width + tiles). Returns the
// image size in pixels.
struct ImageSize {
  std::int64_t width = 0, height = 0;
};
ImageSize write_mask_png(const std::string& path, const Layout& layout, MaskLevel level,
                         int head = -1, std::int64_t max_side = kMaxPngSide);

// "head 3" or "heads 0..3, 6": the label used above pictures.
std::string describe_heads(const std::vector<int>& heads);

}  // namespace spattn
