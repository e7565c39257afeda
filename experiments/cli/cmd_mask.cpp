// spattn mask SPEC --n N ... --level element|block --format ascii|npy|png [--out FILE]: exports a
// layout's mask as ASCII art, a .npy array or a PNG picture.
#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "spattn/attention/select/select.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/mask_export.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::cli {
namespace {

struct MaskOptions {
  std::string spec;
  std::string from_deepspeed;  // DeepSpeed config file, instead of `spec`
  GeometryOptions geo;
  int head = -1;
  std::string level = "element";
  std::string format = "ascii";
  bool format_given = false;  // else inferred from the --out extension (.npy, .png)
  std::string out;
  std::int64_t max_elements = 0;  // 0: the level's default limit
  std::int64_t scale = 0;         // png: pixels per cell; 0: automatic
  bool no_legend = false;         // png: the picture alone
  std::string inputs;             // selectors: directory of q.npy and k.npy to select on
};

// Case-insensitive: "mask.NPY" is a .npy file too.
bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i])
      return false;
  return true;
}

void run_mask(MaskOptions o) {
  if (!o.format_given && ends_with(o.out, ".npy")) o.format = "npy";
  if (!o.format_given && ends_with(o.out, ".png")) o.format = "png";
  // Any other extension would silently get ASCII art: name the formats there are instead.
  const std::string ext = std::filesystem::path(o.out).extension().string();
  if (!o.format_given && !ext.empty() && o.format == "ascii" && !ends_with(o.out, ".txt"))
    throw UsageError(fmt::format(
        "--out {}: '{}' is not a mask format: use .npy (array), .png (picture) or .txt (ASCII "
        "art), or give --format ascii|npy|png",
        o.out, ext));
  const Geometry g = o.geo.geometry();
  const MaskLevel level = o.level == "block" ? MaskLevel::Block : MaskLevel::Element;
  if (o.head < -1 || o.head >= g.heads)
    throw UsageError(fmt::format("--head {} is out of range: allowed -1 (all heads) or 0..{}",
                                 o.head, g.heads - 1));
  if (o.max_elements < 0)
    throw UsageError(fmt::format("--max-elements {} is negative", o.max_elements));
  const std::string spec = pattern_spec(o.spec, o.from_deepspeed, g);
  if (!o.from_deepspeed.empty())
    std::cerr << fmt::format("{}: DeepSpeed sparse_attention maps to {}\n", o.from_deepspeed, spec);
  const PatternPtr pattern = parse_spec(spec);
  // A selector selects on --inputs (one layout per batch); without them build_layout refuses it,
  // naming --inputs.
  std::vector<Layout> batches;
  if (!o.inputs.empty() && pattern->needs_inputs()) {
    const QkInputs in = read_qk_inputs(o.inputs, g);
    batches = select_layouts(pattern, in.q.view(), in.k.view(), g, o.geo.build_options()).layouts;
  } else {
    batches.push_back(build_layout(*pattern, g, o.geo.build_options()));
  }
  const Layout& layout = batches.front();
  if (batches.size() > 1 && o.format != "npy")
    std::cerr << fmt::format("{}: batch 0 of {} shown (the .npy format holds every batch)\n",
                             o.inputs, batches.size());

  if (o.format == "ascii") {
    const std::string art = mask_ascii(layout, level, o.head);
    if (o.out.empty()) {
      std::cout << art;
      return;
    }
    std::ofstream file(o.out, std::ios::binary);
    if (!file) throw Error(fmt::format("{}: cannot create file: {}", o.out, std::strerror(errno)));
    file << art;
    if (!file.flush()) throw Error(fmt::format("{}: write failed", o.out));
    std::cout << fmt::format("wrote {}: {}-level ASCII art of {}\n", o.out, o.level, layout.spec);
    return;
  }

  const std::string path = o.out.empty() ? fmt::format("mask-{}.{}", o.level, o.format) : o.out;
  if (o.format == "npy" && batches.size() > 1) {  // [batch, heads, ...]
    std::vector<std::uint8_t> data;
    std::vector<std::int64_t> shape;
    const std::int64_t limit =
        o.max_elements > 0
            ? o.max_elements
            : (level == MaskLevel::Element ? kMaxElementMaskElements : kMaxBlockMaskCells);
    for (const Layout& l : batches) {
      const MaskArray a =
          level == MaskLevel::Element
              ? element_mask(l, o.head, limit / static_cast<std::int64_t>(batches.size()))
              : block_mask(l, o.head, limit / static_cast<std::int64_t>(batches.size()));
      data.insert(data.end(), a.data.begin(), a.data.end());
      shape = a.shape;
    }
    shape.insert(shape.begin(), static_cast<std::int64_t>(batches.size()));
    write_npy(path, "|u1", shape, data.data(), data.size());
    std::cout << fmt::format(
        "wrote {}: uint8 [{}] {} of {} selected on {}\n", path, fmt::join(shape, ", "),
        level == MaskLevel::Element ? "element mask [batch, heads, nq, nk]"
                                    : "block mask [batch, heads, q_blocks, k_blocks]",
        layout.spec, o.inputs);
    return;
  }
  if (o.format == "npy") {
    const std::vector<std::int64_t> shape =
        level == MaskLevel::Element
            ? write_element_mask_npy(path, layout, o.head,
                                     o.max_elements > 0 ? o.max_elements : kMaxElementMaskElements)
            : write_block_mask_npy(path, layout, o.head,
                                   o.max_elements > 0 ? o.max_elements : kMaxBlockMaskCells);
    std::cout << fmt::format("wrote {}: uint8 [{}] {} of {} ({})\n", path, fmt::join(shape, ", "),
                             level == MaskLevel::Element ? "element mask [heads, nq, nk]"
                                                         : "block mask [heads, q_blocks, k_blocks]",
                             layout.spec,
                             level == MaskLevel::Element ? "1 = allowed" : "1 = tile kept");
    return;
  }
  MaskPngOptions png;
  png.scale = o.scale;
  png.legend = !o.no_legend;
  const ImageSize size = write_mask_png(path, layout, level, o.head, png);
  std::cout << fmt::format("wrote {}: {} x {} pixel {}-level PNG of {} ({} pixels per {}{})\n",
                           path, size.width, size.height, o.level, layout.spec, size.scale,
                           level == MaskLevel::Element ? "element" : "tile",
                           png.legend ? ", with a legend" : "");
}

}  // namespace

Command add_mask_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "mask", "Export a pattern's mask at one geometry: ASCII art, .npy array or PNG picture");
  auto o = std::make_shared<MaskOptions>();
  sub->add_option("spec", o->spec, "pattern spec string, e.g. 'sliding(1024) | sink(4)'");
  sub->add_option("--from-deepspeed", o->from_deepspeed,
                  "DeepSpeed config JSON (whole config or its sparse_attention section) to use "
                  "instead of a spec: its ds_* equivalent, printed on stderr")
      ->check(non_empty());
  o->geo.add_to(*sub);
  sub->add_option("--inputs", o->inputs,
                  "selectors: directory of q.npy and k.npy (as `run --inputs` reads them) to "
                  "select on; sizes must agree with --n, --nk and --heads; batch > 1 gives "
                  "[batch, heads, ...] arrays")
      ->check(non_empty());
  sub->add_option("--head", o->head, "export only this head (-1: all heads)")
      ->capture_default_str()
      ->transform(decimal(-1, kMaxHeads - 1));
  sub->add_option("--level", o->level,
                  "element: one value per (query, key) pair, [heads, nq, nk]; block: one value "
                  "per tile, [heads, q_blocks, k_blocks]")
      ->check(CLI::IsMember({"element", "block"}))
      ->capture_default_str();
  auto* format = sub->add_option("--format", o->format,
                                 "ascii (to stdout or --out), npy or png (default: from the --out "
                                 "extension .npy/.png, else ascii)")
                     ->check(CLI::IsMember({"ascii", "npy", "png"}));
  sub->add_option("--out", o->out,
                  "output file (npy/png default: mask-LEVEL.FORMAT in the current directory)")
      ->check(non_empty());
  sub->add_option("--max-elements", o->max_elements,
                  "largest .npy array to write, in elements (default: 2^28 at element level, "
                  "2^30 at block level)")
      ->transform(decimal(1, std::numeric_limits<std::int64_t>::max()));
  sub->add_option("--scale", o->scale,
                  "png: pixels per tile (block level) or per element, each way, 1..64; 0 (the "
                  "default): as many as keep a head's picture within 256 pixels")
      ->transform(decimal(0, kMaxPngScale));
  sub->add_flag("--no-legend", o->no_legend,
                "png: the picture alone, without the legend below and the head labels above");
  return {sub, [o, format] {
            o->format_given = format->count() > 0;
            run_mask(*o);
          }};
}

}  // namespace spattn::cli
