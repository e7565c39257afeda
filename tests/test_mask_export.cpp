// Mask export (element/block .npy, ASCII art, PNG) checked against a brute-force oracle: the
// pattern's own allows(), evaluated pair by pair, never the layout the exporter reads.
#include <png.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/mask_export.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using spattn::Geometry;
using spattn::MaskLevel;

namespace {

// A fresh temporary directory per test, removed at scope exit.
struct TempDir : spattn::test::TempDir {
  TempDir() : spattn::test::TempDir("spattn_mask_export") {}
};

// A pattern with only the required method: the builder must scan it pair by pair.
class AllowsOnly final : public spattn::Pattern {
 public:
  bool allows(const Geometry&, int, std::int64_t i, std::int64_t j) const override {
    return (i * 7 + j * 3) % 5 == 0 || i == j;
  }
  std::string spec() const override { return "allows_only"; }
};

struct Case {
  std::string name;
  spattn::PatternPtr pattern;
  Geometry g;
};

std::vector<Case> cases() {
  return {
      // ragged: 37 is not a multiple of 16
      {"causal ragged", spattn::parse_spec("causal"), Geometry{37, 37, 1, 16, 16}},
      // nq < nk (bottom-right alignment), different query and key tile sizes
      {"sliding|sink nq<nk", spattn::parse_spec("sliding(5) | sink(2)"),
       Geometry{50, 77, 1, 16, 32}},
      // three heads with three different patterns
      {"per-head",
       spattn::parse_spec("heads(0: window(3, 1) - sink(1); 1: strided(4) & causal; "
                          "2: random(2, block=16, seed=3))"),
       Geometry{45, 61, 3, 16, 16}},
      // two heads sharing one layout (scanned pattern, irregular bits in every tile)
      {"scanned", std::make_shared<AllowsOnly>(), Geometry{40, 33, 2, 16, 16}},
  };
}

bool oracle(const Case& c, int h, std::int64_t i, std::int64_t j) {
  return c.pattern->allows(c.g, h, i, j);
}

// Allowed pairs of the oracle in [q0, q1) x [k0, k1) (clipped to the geometry).
std::int64_t oracle_count(const Case& c, int h, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                          std::int64_t k1) {
  std::int64_t n = 0;
  for (std::int64_t i = q0; i < std::min(q1, c.g.nq); ++i)
    for (std::int64_t j = k0; j < std::min(k1, c.g.nk); ++j) n += oracle(c, h, i, j) ? 1 : 0;
  return n;
}

// Class of a cell region by the oracle: 1 all allowed, 0 none, 2 some.
int oracle_class(const Case& c, int h, std::int64_t q0, std::int64_t q1, std::int64_t k0,
                 std::int64_t k1) {
  const std::int64_t area = (std::min(q1, c.g.nq) - q0) * (std::min(k1, c.g.nk) - k0);
  const std::int64_t n = oracle_count(c, h, q0, q1, k0, k1);
  return n == 0 ? 0 : n == area ? 1 : 2;
}

struct Image {
  std::int64_t width = 0, height = 0;
  bool color = false;             // the file's color type is RGB (else grayscale)
  std::vector<std::uint8_t> rgb;  // decoded as 8-bit RGB
  const std::uint8_t* at(std::int64_t x, std::int64_t y) const {
    return rgb.data() + (y * width + x) * 3;
  }
};

Image read_png(const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  REQUIRE(png_image_begin_read_from_file(&img, path.c_str()) != 0);
  Image out;
  out.color = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
  img.format = PNG_FORMAT_RGB;
  out.width = img.width;
  out.height = img.height;
  out.rgb.resize(PNG_IMAGE_SIZE(img));
  REQUIRE(png_image_finish_read(&img, nullptr, out.rgb.data(), 0, nullptr) != 0);
  return out;
}

void check_pixel(const Image& im, std::int64_t x, std::int64_t y, int r, int g, int b) {
  const std::uint8_t* p = im.at(x, y);
  INFO("pixel (" << x << ", " << y << ")");
  REQUIRE(int{p[0]} == r);
  REQUIRE(int{p[1]} == g);
  REQUIRE(int{p[2]} == b);
}

// Picture lines of an ASCII art for the group labelled `label` (e.g. "head 0:").
std::vector<std::string> picture(const std::string& art, const std::string& label) {
  std::istringstream in(art);
  std::vector<std::string> lines;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (inside && (line.rfind("head", 0) == 0)) break;
    if (inside) lines.push_back(line);
    if (line == label) inside = true;
  }
  return lines;
}

}  // namespace

TEST_CASE("element mask .npy matches brute-force allows", "[mask_export]") {
  TempDir dir;
  for (const Case& c : cases()) {
    SECTION(c.name) {
      const spattn::Layout layout = spattn::build_layout(*c.pattern, c.g);
      const std::string path = dir.file("element.npy");
      const auto shape = spattn::write_element_mask_npy(path, layout);
      const spattn::NpyArray a = spattn::read_npy(path);
      CHECK(a.descr == "|u1");
      REQUIRE(a.shape == std::vector<std::int64_t>{c.g.heads, c.g.nq, c.g.nk});
      CHECK(shape == a.shape);
      for (int h = 0; h < c.g.heads; ++h)
        for (std::int64_t i = 0; i < c.g.nq; ++i)
          for (std::int64_t j = 0; j < c.g.nk; ++j) {
            const unsigned v = a.data[static_cast<std::size_t>((h * c.g.nq + i) * c.g.nk + j)];
            INFO("head " << h << " pair (" << i << ", " << j << ")");
            REQUIRE(v == (oracle(c, h, i, j) ? 1u : 0u));
          }
      // One selected head: shape [1, nq, nk], the same plane.
      const int h = c.g.heads - 1;
      const spattn::MaskArray one = spattn::element_mask(layout, h);
      REQUIRE(one.shape == std::vector<std::int64_t>{1, c.g.nq, c.g.nk});
      for (std::int64_t i = 0; i < c.g.nq; ++i)
        for (std::int64_t j = 0; j < c.g.nk; ++j)
          REQUIRE(one.data[static_cast<std::size_t>(i * c.g.nk + j)] ==
                  (oracle(c, h, i, j) ? 1 : 0));
    }
  }
}

TEST_CASE("block mask .npy matches brute-force allows per tile", "[mask_export]") {
  TempDir dir;
  for (const Case& c : cases()) {
    SECTION(c.name) {
      const spattn::Layout layout = spattn::build_layout(*c.pattern, c.g);
      const std::string path = dir.file("block.npy");
      spattn::write_block_mask_npy(path, layout);
      const spattn::NpyArray a = spattn::read_npy(path);
      CHECK(a.descr == "|u1");
      const std::int64_t qb = (c.g.nq + c.g.block_q - 1) / c.g.block_q;
      const std::int64_t kb = (c.g.nk + c.g.block_k - 1) / c.g.block_k;
      REQUIRE(a.shape == std::vector<std::int64_t>{c.g.heads, qb, kb});
      for (int h = 0; h < c.g.heads; ++h)
        for (std::int64_t r = 0; r < qb; ++r)
          for (std::int64_t col = 0; col < kb; ++col) {
            const bool any = oracle_count(c, h, r * c.g.block_q, (r + 1) * c.g.block_q,
                                          col * c.g.block_k, (col + 1) * c.g.block_k) > 0;
            INFO("head " << h << " tile (" << r << ", " << col << ")");
            REQUIRE(a.data[static_cast<std::size_t>((h * qb + r) * kb + col)] == (any ? 1 : 0));
          }
    }
  }
}

TEST_CASE("block .npy reads back through blocks(file=...)", "[mask_export]") {
  // The block file is the format the blocks pattern loads: its pairs are the kept tiles' pairs.
  TempDir dir;
  const Case c{"per-head", spattn::parse_spec("heads(0: sliding(9) | sink(3); 1: strided(5))"),
               Geometry{70, 70, 2, 16, 16}};
  const spattn::Layout layout = spattn::build_layout(*c.pattern, c.g);
  const std::string path = dir.file("layout.npy");
  spattn::write_block_mask_npy(path, layout);
  const auto loaded = spattn::parse_spec("blocks(file=\"" + path + "\", block=16)");
  for (int h = 0; h < 2; ++h)
    for (std::int64_t i = 0; i < c.g.nq; ++i)
      for (std::int64_t j = 0; j < c.g.nk; ++j) {
        const std::int64_t q0 = i / 16 * 16, k0 = j / 16 * 16;
        REQUIRE(loaded->allows(c.g, h, i, j) == (oracle_count(c, h, q0, q0 + 16, k0, k0 + 16) > 0));
      }
}

TEST_CASE("element PNG pixels match brute-force allows", "[mask_export]") {
  TempDir dir;
  for (const Case& c : cases()) {
    SECTION(c.name) {
      const spattn::Layout layout = spattn::build_layout(*c.pattern, c.g);
      const std::string path = dir.file("element.png");
      const spattn::ImageSize size = spattn::write_mask_png(path, layout, MaskLevel::Element);
      const Image im = read_png(path);
      const std::int64_t H = c.g.heads;
      REQUIRE(im.width == H * c.g.nk + (H - 1) * 2);
      REQUIRE(im.height == c.g.nq);
      CHECK(size.width == im.width);
      CHECK(size.height == im.height);
      CHECK(im.color == (H > 1));
      for (int h = 0; h < H; ++h) {
        const std::int64_t x0 = h * (c.g.nk + 2);
        for (std::int64_t i = 0; i < c.g.nq; ++i) {
          for (std::int64_t j = 0; j < c.g.nk; ++j) {
            const int v = oracle(c, h, i, j) ? 0 : 255;
            check_pixel(im, x0 + j, i, v, v, v);
          }
          if (h + 1 < H) {  // the red separator after this head
            check_pixel(im, x0 + c.g.nk, i, 255, 0, 0);
            check_pixel(im, x0 + c.g.nk + 1, i, 255, 0, 0);
          }
        }
      }
      // A selected head alone: grayscale, its own picture.
      const int sel = static_cast<int>(H - 1);
      spattn::write_mask_png(path, layout, MaskLevel::Element, sel);
      const Image one = read_png(path);
      CHECK_FALSE(one.color);
      REQUIRE(one.width == c.g.nk);
      for (std::int64_t i = 0; i < c.g.nq; ++i)
        for (std::int64_t j = 0; j < c.g.nk; ++j) {
          const int v = oracle(c, sel, i, j) ? 0 : 255;
          check_pixel(one, j, i, v, v, v);
        }
    }
  }
}

TEST_CASE("block PNG: one pixel per tile, black full, gray partial, white empty", "[mask_export]") {
  TempDir dir;
  for (const Case& c : cases()) {
    SECTION(c.name) {
      const spattn::Layout layout = spattn::build_layout(*c.pattern, c.g);
      const std::string path = dir.file("block.png");
      spattn::write_mask_png(path, layout, MaskLevel::Block);
      const Image im = read_png(path);
      const std::int64_t qb = (c.g.nq + c.g.block_q - 1) / c.g.block_q;
      const std::int64_t kb = (c.g.nk + c.g.block_k - 1) / c.g.block_k;
      const std::int64_t H = c.g.heads;
      REQUIRE(im.width == H * kb + (H - 1) * 2);
      REQUIRE(im.height == qb);
      const int shade[3] = {255, 0, 128};  // by oracle_class: none, all, some
      for (int h = 0; h < H; ++h)
        for (std::int64_t r = 0; r < qb; ++r)
          for (std::int64_t col = 0; col < kb; ++col) {
            const int v = shade[oracle_class(c, h, r * c.g.block_q, (r + 1) * c.g.block_q,
                                             col * c.g.block_k, (col + 1) * c.g.block_k)];
            check_pixel(im, h * (kb + 2) + col, r, v, v, v);
          }
    }
  }
}

TEST_CASE("downsampled block pictures classify each cell region exactly", "[mask_export]") {
  // With a limit of 5 cells per side, cell (R, C) covers f x f tiles; the oracle counts the
  // region's allowed pairs directly.
  TempDir dir;
  const std::vector<Case> downsampled = {
      {"square", spattn::parse_spec("sliding(100) | sink(5) | global(tokens=[130])"),
       Geometry{200, 200, 1, 16, 16}},
      {"wide", spattn::parse_spec("causal - strided(3)"), Geometry{100, 300, 1, 16, 16}},
      {"tall", spattn::parse_spec("window(70)"), Geometry{300, 90, 1, 32, 16}},
  };
  constexpr std::int64_t kLimit = 5;
  for (const Case& c : downsampled) {
    SECTION(c.name) {
      const spattn::Layout layout = spattn::build_layout(*c.pattern, c.g);
      const std::int64_t qb = (c.g.nq + c.g.block_q - 1) / c.g.block_q;
      const std::int64_t kb = (c.g.nk + c.g.block_k - 1) / c.g.block_k;
      const std::int64_t f = (std::max(qb, kb) + kLimit - 1) / kLimit;
      REQUIRE(f > 1);
      const std::int64_t rows = (qb + f - 1) / f, cols = (kb + f - 1) / f;
      const std::int64_t cq = f * c.g.block_q, ck = f * c.g.block_k;  // tokens per cell

      const std::string art = spattn::mask_ascii(layout, MaskLevel::Block, -1, kLimit);
      CHECK(art.find("each character covers " + std::to_string(f) + " x " + std::to_string(f) +
                     " tiles") != std::string::npos);
      const std::vector<std::string> lines = picture(art, "head 0:");
      REQUIRE(static_cast<std::int64_t>(lines.size()) == rows);

      const std::string path = dir.file("down.png");
      spattn::write_mask_png(path, layout, MaskLevel::Block, -1, kLimit);
      const Image im = read_png(path);
      REQUIRE(im.width == cols);
      REQUIRE(im.height == rows);

      const char glyph[3] = {'.', '#', '+'};
      const int shade[3] = {255, 0, 128};
      for (std::int64_t R = 0; R < rows; ++R) {
        REQUIRE(static_cast<std::int64_t>(lines[R].size()) == cols);
        for (std::int64_t C = 0; C < cols; ++C) {
          const int cls = oracle_class(c, 0, R * cq, (R + 1) * cq, C * ck, (C + 1) * ck);
          INFO("cell (" << R << ", " << C << ")");
          CHECK(lines[R][C] == glyph[cls]);
          check_pixel(im, C, R, shade[cls], shade[cls], shade[cls]);
        }
      }
    }
  }
}

TEST_CASE("ASCII art of small hand-computed cases", "[mask_export]") {
  SECTION("causal, n = 4, element level") {
    const auto p = spattn::parse_spec("causal");
    const spattn::Layout layout = spattn::build_layout(*p, Geometry{4, 4, 1, 64, 64});
    CHECK(spattn::mask_ascii(layout, MaskLevel::Element) ==
          "element mask of causal at nq=4 nk=4 heads=1 block_q=64 block_k=64\n"
          "legend: '#' allowed, '.' not allowed; rows are queries, columns are keys\n"
          "head 0:\n"
          "#...\n"
          "##..\n"
          "###.\n"
          "####\n");
  }
  SECTION("sliding(40), n = 64, 16 x 16 tiles, block level") {
    // Query q sees keys q-39..q. Tile (r, c) is full when every q in block r sees all of block c.
    const auto p = spattn::parse_spec("sliding(40)");
    const spattn::Layout layout = spattn::build_layout(*p, Geometry{64, 64, 1, 16, 16});
    const std::string art = spattn::mask_ascii(layout, MaskLevel::Block);
    CHECK(picture(art, "head 0:") == std::vector<std::string>{"+...", "#+..", "+#+.", "++#+"});
    CHECK(art.find("legend: '#' full tile, '+' partial tile, '.' empty tile") != std::string::npos);
  }
  SECTION("one picture per distinct head layout, labelled with its heads") {
    const auto p = spattn::parse_spec("heads(0, 2..3: causal; 1: dense)");
    const spattn::Layout layout = spattn::build_layout(*p, Geometry{3, 3, 4, 16, 16});
    const std::string art = spattn::mask_ascii(layout, MaskLevel::Element);
    CHECK(picture(art, "heads 0, 2..3:") == std::vector<std::string>{"#..", "##.", "###"});
    CHECK(picture(art, "head 1:") == std::vector<std::string>{"###", "###", "###"});
    CHECK(picture(spattn::mask_ascii(layout, MaskLevel::Element, 3), "head 3:") ==
          std::vector<std::string>{"#..", "##.", "###"});
    CHECK(spattn::mask_ascii(layout, MaskLevel::Element, 3).find("head 1:") == std::string::npos);
  }
}

TEST_CASE("element ASCII art matches brute-force allows", "[mask_export]") {
  const Case c = cases()[2];  // three heads, three patterns
  const spattn::Layout layout = spattn::build_layout(*c.pattern, c.g);
  const std::string art = spattn::mask_ascii(layout, MaskLevel::Element);
  for (int h = 0; h < c.g.heads; ++h) {
    const std::vector<std::string> lines = picture(art, "head " + std::to_string(h) + ":");
    REQUIRE(static_cast<std::int64_t>(lines.size()) == c.g.nq);
    for (std::int64_t i = 0; i < c.g.nq; ++i) {
      REQUIRE(static_cast<std::int64_t>(lines[i].size()) == c.g.nk);
      for (std::int64_t j = 0; j < c.g.nk; ++j)
        REQUIRE(lines[i][j] == (oracle(c, h, i, j) ? '#' : '.'));
    }
  }
}

TEST_CASE("too-large exports are refused with a message naming the block level", "[mask_export]") {
  const auto p = spattn::parse_spec("causal");
  SECTION("element .npy above the element limit") {
    const spattn::Layout layout = spattn::build_layout(*p, Geometry{100, 100, 2, 16, 16});
    try {
      spattn::element_mask(layout, -1, 19999);
      FAIL("expected BudgetError");
    } catch (const spattn::BudgetError& e) {
      const std::string msg = e.what();
      CHECK(msg.find("[2, 100, 100]") != std::string::npos);
      CHECK(msg.find("20000 elements") != std::string::npos);
      CHECK(msg.find("--level block") != std::string::npos);
    }
    CHECK(spattn::element_mask(layout, -1, 20000).data.size() == 20000);
    CHECK(spattn::element_mask(layout, 0, 19999).data.size() == 10000);  // one head fits
  }
  SECTION("default limits at a million tokens") {
    const auto w = spattn::parse_spec("window(4)");
    const std::int64_t n = std::int64_t{1} << 20;
    const spattn::Layout layout = spattn::build_layout(*w, Geometry{n, n, 4, 128, 128});
    CHECK_THROWS_WITH(spattn::element_mask(layout),
                      Catch::Contains("[4, 1048576, 1048576]") && Catch::Contains("--level block"));
    CHECK_THROWS_AS(spattn::block_mask(layout, -1, 4 * 8192 * 8192 - 1), spattn::BudgetError);
  }
  SECTION("element ASCII above 256 x 256") {
    const spattn::Layout layout = spattn::build_layout(*p, Geometry{257, 10, 1, 16, 16});
    CHECK_THROWS_WITH(spattn::mask_ascii(layout, MaskLevel::Element),
                      Catch::Contains("--level block") && Catch::Contains("257"));
    CHECK_NOTHROW(spattn::mask_ascii(layout, MaskLevel::Block));
  }
  SECTION("element PNG above 4096 x 4096 per head") {
    TempDir dir;
    const spattn::Layout layout = spattn::build_layout(*p, Geometry{4097, 16, 1, 128, 16});
    CHECK_THROWS_WITH(spattn::write_mask_png(dir.file("x.png"), layout, MaskLevel::Element),
                      Catch::Contains("--level block") && Catch::Contains("4097"));
    CHECK_FALSE(fs::exists(dir.file("x.png")));
  }
  SECTION("bad head index") {
    const spattn::Layout layout = spattn::build_layout(*p, Geometry{8, 8, 2, 16, 16});
    CHECK_THROWS_AS(spattn::element_mask(layout, 2), spattn::UsageError);
    CHECK_THROWS_AS(spattn::block_mask(layout, -2), spattn::UsageError);
    CHECK_THROWS_AS(spattn::mask_ascii(layout, MaskLevel::Block, 5), spattn::UsageError);
  }
}

TEST_CASE("describe_heads compresses runs", "[mask_export]") {
  CHECK(spattn::describe_heads({3}) == "head 3");
  CHECK(spattn::describe_heads({0, 1, 2, 3, 6}) == "heads 0..3, 6");
  CHECK(spattn::describe_heads({1, 3}) == "heads 1, 3");
}

TEST_CASE("PNG scale and legend: cells of scale x scale pixels, labels above, legend below",
          "[mask_export]") {
  TempDir dir;
  // causal, 64 tokens in 16 x 16 tiles: tile (r, c) full below the diagonal, partial on it,
  // empty above; two heads.
  const spattn::Layout layout =
      spattn::build_layout(*spattn::parse_spec("causal"), Geometry{64, 64, 2, 16, 16});
  spattn::MaskPngOptions o;
  o.scale = 5;
  o.legend = true;
  const std::string path = dir.file("legend.png");
  const spattn::ImageSize size = spattn::write_mask_png(path, layout, MaskLevel::Block, -1, o);
  // Panels: 2 x 4 tiles x 5 px + a separator of max(2, 5/2) = 2: 42 px, so text size t = 1.
  // Legend items (swatch 10 + text 6n-1 + gap 8): "kept, full" 77, "kept, partial" 95,
  // "empty" 47, "head separator" 101, from x = 2: width 2 + 320 = 322. Height: head labels 11,
  // panels 20, legend 13.
  CHECK(size.width == 322);
  CHECK(size.height == 44);
  CHECK(size.scale == 5);
  CHECK(size.top == 11);
  const Image im = read_png(path);
  REQUIRE(im.width == 322);
  REQUIRE(im.height == 44);
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 4; ++c) {
        const int v = r > c ? 0 : r == c ? 128 : 255;
        for (int dy : {0, 4})
          for (int dx : {0, 4}) check_pixel(im, h * 22 + c * 5 + dx, 11 + r * 5 + dy, v, v, v);
      }
  for (int y = 11; y < 31; ++y) {
    check_pixel(im, 20, y, 255, 0, 0);  // the separator
    check_pixel(im, 21, y, 255, 0, 0);
    check_pixel(im, 42, y, 255, 255, 255);  // right of the panels: white
    check_pixel(im, 321, y, 255, 255, 255);
  }
  // Head labels: "head 0" (35 px) does not fit a 20-px panel, so "0" at x = 0 and "1" at
  // x = 22, from y = 2. The top row of '0' is .###. and that of '1' is ..#..
  check_pixel(im, 0, 2, 255, 255, 255);
  check_pixel(im, 1, 2, 0, 0, 0);
  check_pixel(im, 3, 2, 0, 0, 0);
  check_pixel(im, 24, 2, 0, 0, 0);
  check_pixel(im, 23, 2, 255, 255, 255);
  check_pixel(im, 1, 1, 255, 255, 255);
  // Swatches from y = 31 + 3: interiors at x + 3 of x = 2, 79, 174, 221; a gray border.
  check_pixel(im, 5, 37, 0, 0, 0);
  check_pixel(im, 82, 37, 128, 128, 128);
  check_pixel(im, 177, 37, 255, 255, 255);
  check_pixel(im, 224, 37, 255, 0, 0);
  check_pixel(im, 2, 34, 96, 96, 96);
  check_pixel(im, 174, 40, 96, 96, 96);

  // Automatic scale: 256 / 4 tiles = 64, capped at 32.
  o.scale = 0;
  CHECK(spattn::write_mask_png(path, layout, MaskLevel::Block, 0, o).scale == 32);
  // Out of range, and a scaled picture beyond 16384 pixels.
  o.scale = 65;
  CHECK_THROWS_WITH(spattn::write_mask_png(path, layout, MaskLevel::Block, 0, o),
                    Catch::Contains("scale 65 is not allowed: use 1..64"));
  const spattn::Layout big =
      spattn::build_layout(*spattn::parse_spec("sliding(4)"), Geometry{4096, 4096, 1, 64, 64});
  o.scale = 8;
  CHECK_THROWS_WITH(spattn::write_mask_png(path, big, MaskLevel::Element, 0, o),
                    Catch::Contains("32768 x 32768 pixels, more than 16384"));
}

TEST_CASE("spattn mask --scale and --no-legend", "[mask_export][cli]") {
  TempDir dir;
  const std::string png = dir.file("m.png");
  // 20 x 27 tokens in 16 x 16 tiles: 2 x 2 tiles per head, 2 heads, separator 2.
  const std::string base =
      "mask causal --n 20 --nk 27 --heads 2 --block 16 --level block --out '" + png + "'";
  const auto raw = spattn::test::run_cli(base + " --scale 1 --no-legend");
  REQUIRE(raw.code == 0);
  CHECK_THAT(raw.out, Catch::Contains("6 x 2 pixel block-level PNG") &&
                          Catch::Contains("(1 pixels per tile)"));
  CHECK(read_png(png).width == 6);
  const auto scaled = spattn::test::run_cli(base + " --scale 3");
  REQUIRE(scaled.code == 0);
  CHECK_THAT(scaled.out, Catch::Contains("(3 pixels per tile, with a legend)"));
  const Image im = read_png(png);
  CHECK(im.height == 11 + 2 * 3 + 13);
  // Automatic: 256 / 2 tiles = 128, capped at 32 pixels per tile.
  const auto automatic = spattn::test::run_cli(base);
  CHECK_THAT(automatic.out, Catch::Contains("(32 pixels per tile, with a legend)"));
  const auto bad = spattn::test::run_cli(base + " --scale 65");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--scale"));
}
