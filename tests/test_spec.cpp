// The spec language: round trips, canonical printing, and errors (columns and messages).
//
// Expected canonical strings and error columns below are written by hand from the grammar and
// printing rules in spec.hpp, not copied from the code's output.
#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;
using Catch::Matchers::Contains;
using spattn::Geometry;
using spattn::parse_spec;
using spattn::PatternPtr;

// A temporary directory removed at exit.
const std::filesystem::path& temp_dir() {
  static const spattn::test::TempDir d("spattn_spec");
  return d.path();
}

// Writes a [heads, qb, kb] int8 block layout with a fixed pattern of cells; returns its path.
std::string write_blocks(const std::string& name, i64 heads, i64 qb, i64 kb) {
  std::vector<std::int8_t> cells(static_cast<std::size_t>(heads * qb * kb));
  for (std::size_t k = 0; k < cells.size(); ++k) cells[k] = (k * 7 + k / 5) % 3 == 0;
  const std::string path = (temp_dir() / name).string();
  spattn::write_npy(path, "|i1", {heads, qb, kb}, cells.data(), cells.size());
  return path;
}

// Spec-string literal of a path (quotes and backslashes escaped).
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Same allowed pairs on every head, by pairs and by built layouts.
void check_same_pairs(const spattn::Pattern& a, const spattn::Pattern& b, const Geometry& g) {
  i64 mismatches = 0;
  for (int h = 0; h < g.heads; ++h)
    for (i64 i = 0; i < g.nq; ++i)
      for (i64 j = 0; j < g.nk; ++j) mismatches += a.allows(g, h, i, j) != b.allows(g, h, i, j);
  CHECK(mismatches == 0);
  const spattn::Layout la = spattn::build_layout(a, g), lb = spattn::build_layout(b, g);
  for (int h = 0; h < g.heads; ++h) {
    CHECK(la.head(h).counts().allowed_pairs == lb.head(h).counts().allowed_pairs);
    i64 differ = 0;
    for (i64 i = 0; i < g.nq; ++i)
      for (i64 j = 0; j < g.nk; ++j) differ += la.head(h).allows(i, j) != lb.head(h).allows(i, j);
    CHECK(differ == 0);
  }
}

// Expects parse_spec(spec) to throw SpecError at `column` with `needle` in the message.
void check_spec_error(const std::string& spec, std::size_t column, const std::string& needle) {
  INFO("spec: '" << spec << "'");
  try {
    parse_spec(spec);
    FAIL("no error thrown");
  } catch (const spattn::SpecError& e) {
    INFO("message: " << e.what());
    CHECK(e.column() == column);
    CHECK_THAT(e.what(), Contains(needle));
    CHECK_THAT(e.what(), Contains(fmt::format("column {}", column)));
  }
}

// Expects a rejected parameter value: a UsageError naming the parameter and what is allowed.
void check_bad_value(const std::string& spec, const std::vector<std::string>& needles) {
  INFO("spec: '" << spec << "'");
  try {
    parse_spec(spec);
    FAIL("no error thrown");
  } catch (const spattn::UsageError& e) {
    INFO("message: " << e.what());
    for (const auto& n : needles) CHECK_THAT(e.what(), Contains(n));
  }
}

// Expects build_layout at g to throw UsageError (not at parse time) with every needle.
void check_build_error(const std::string& spec, const Geometry& g,
                       const std::vector<std::string>& needles) {
  INFO("spec: '" << spec << "' at " << g.describe());
  const PatternPtr p = parse_spec(spec);  // parses fine: the mismatch is with the geometry
  try {
    spattn::build_layout(*p, g);
    FAIL("no error thrown");
  } catch (const spattn::UsageError& e) {
    INFO("message: " << e.what());
    for (const auto& n : needles) CHECK_THAT(e.what(), Contains(n));
  }
}

}  // namespace

TEST_CASE("spec round trip: parse(p.spec()) prints and allows the same", "[spec]") {
  // nq = 48, nk = 64, 4 heads: documents sum to 64, tokens < 64, blocks are [.., 3, 4] at 16.
  const Geometry g{48, 64, 4, 16, 32};
  const std::string b1 = write_blocks("layout_1.npy", 1, 3, 4);
  const std::string b4 = write_blocks("layout_4.npy", 4, 3, 4);
  const std::string odd = write_blocks("odd \"name\" \\ here.npy", 1, 3, 4);
  const std::vector<std::string> specs = {
      "dense",
      "causal",
      "window(3, 7)",
      "window(0, 0)",
      "window(5)",
      "window(right=2, left=9)",
      "sliding(17)",
      "dilated(3, 4)",
      "dilated(w=2, d=1)",
      "global(5)",
      "global(tokens=[63, 0, 7, 8])",
      "sink(3)",
      "prefix(9)",
      "chunked(11)",
      "documents(lengths=[10, 20, 34])",
      "strided(6)",
      "random(3, block=16, seed=42)",
      "random(2)",
      "random(4, seed=9)",
      "random(1, block=7)",
      "random(2, 64, 0)",
      "blocks(file=" + quoted(b1) + ", block=16)",
      "blocks(file=" + quoted(b4) + ", block=16)",
      "blocks(file=" + quoted(odd) + ", block=16)",
      "sliding(8) | sink(4)",
      "chunked(16) & causal",
      "prefix(20) | causal",
      "window(8) | global(tokens=[0, 5, 33])",
      "dense - sliding(3)",
      "(sliding(4) | sink(1)) | causal",
      "sliding(4) - (causal | sink(1))",
      "sliding(4) - causal | sink(1)",
      "(causal | sink(1)) & window(2) - strided(3)",
      "dense - (causal - sink(2))",
      "((dense - causal) - sink(2))",
      "causal & (sink(1) - window(2)) | dilated(2, 3) & strided(5)",
      "heads(0..1: sliding(4) | sink(1); 2..3: causal)",
      "heads(3: dense; 0..2: random(2, block=16, seed=1))",
      "heads(0, 2: causal; 1, 3: dense - causal) | sink(2)",
      "heads(0..3: causal) & heads(0: sink(1); 1..3: sliding(5))",
      "heads(0: heads(0..3: causal); 1..3: dense)",
      "documents(lengths=[32, 32]) & causal - (heads(0..1: sink(1); 2..3: sliding(2)))",
  };
  for (const std::string& s : specs) {
    INFO("spec: " << s);
    const PatternPtr p = parse_spec(s);
    const std::string printed = p->spec();
    INFO("printed: " << printed);
    const PatternPtr q = parse_spec(printed);
    CHECK(q->spec() == printed);
    CHECK(*p == *q);
    check_same_pairs(*p, *q, g);
  }
}

TEST_CASE("spec printing is canonical", "[spec]") {
  struct C {
    const char* in;
    const char* out;
  };
  const C cases[] = {
      {"window(128)", "window(128, 128)"},
      {"window(left=3, right=5)", "window(3, 5)"},
      {"window(right=5, left=3)", "window(3, 5)"},
      {"window(3,0)", "window(3, 0)"},
      {"  causal  ", "causal"},
      {"causal()", "causal"},
      {"((causal))", "causal"},
      {"sink(s=4)", "sink(4)"},
      {"dilated(d=2, w=3)", "dilated(3, 2)"},
      {"documents(lengths=[3,5])", "documents(lengths=[3, 5])"},
      {"global(n=4)", "global(4)"},
      {"global(tokens=[33, 0, 5])", "global(tokens=[0, 5, 33])"},
      {"random(3, block=64, seed=0)", "random(3)"},
      {"random(r=3, seed=5)", "random(3, seed=5)"},
      {"random(3, 32)", "random(3, block=32)"},
      {"random(seed=1, r=2, block=8)", "random(2, block=8, seed=1)"},
      // Unions and intersections flatten; order is kept.
      {"(sliding(4) | sink(1)) | causal", "sliding(4) | sink(1) | causal"},
      {"sliding(4) | (sink(1) | causal)", "sliding(4) | sink(1) | causal"},
      {"sink(1) | causal", "sink(1) | causal"},
      {"(causal & sink(2)) & window(3)", "causal & sink(2) & window(3, 3)"},
      {"causal & (sink(2) & window(3))", "causal & sink(2) & window(3, 3)"},
      // Minimal parentheses under Python-set precedence: '-' tightest, then '&', then '|'.
      {"sliding(4) - (causal | sink(1))", "sliding(4) - (causal | sink(1))"},
      {"sliding(4) - causal | sink(1)", "sliding(4) - causal | sink(1)"},
      {"(sliding(4) - causal) | sink(1)", "sliding(4) - causal | sink(1)"},
      {"dense - (causal - sink(1))", "dense - (causal - sink(1))"},
      {"(dense - causal) - sink(1)", "dense - causal - sink(1)"},
      {"(causal | sink(1)) & window(2)", "(causal | sink(1)) & window(2, 2)"},
      {"causal | sink(1) & window(2)", "causal | sink(1) & window(2, 2)"},
      {"causal | (sink(1) & window(2))", "causal | sink(1) & window(2, 2)"},
      {"(causal & sink(1)) | window(2)", "causal & sink(1) | window(2, 2)"},
      {"causal & (sink(1) - window(2))", "causal & sink(1) - window(2, 2)"},
      {"(causal & sink(1)) - window(2)", "(causal & sink(1)) - window(2, 2)"},
      {"causal - (sink(1) & window(2))", "causal - (sink(1) & window(2, 2))"},
      {"(causal | sink(1)) | (window(2) & dense)", "causal | sink(1) | window(2, 2) & dense"},
      // Per-head groups sorted by first head, ranges sorted and merged.
      {"heads(4..7: causal; 0..3: sliding(4))", "heads(0..3: sliding(4); 4..7: causal)"},
      {"heads(2..3, 0..1: causal)", "heads(0..3: causal)"},
      {"heads(3, 1: dense; 2, 0: causal)", "heads(0, 2: causal; 1, 3: dense)"},
      {"heads(0..0: causal; 1..1: dense)", "heads(0: causal; 1: dense)"},
      {"heads(0: causal;1:dense)|sink(2)", "heads(0: causal; 1: dense) | sink(2)"},
      {"heads(1: (sliding(2)); 0: sink(1) | causal)", "heads(0: sink(1) | causal; 1: sliding(2))"},
  };
  for (const C& c : cases) {
    INFO("input: " << c.in);
    CHECK(parse_spec(c.in)->spec() == c.out);
  }
}

TEST_CASE("precedence: a | b - c & d is a | ((b - c) & d)", "[spec]") {
  // Checked on pairs, not only on printing: the parse must mean the documented grouping.
  const Geometry g{40, 40, 1, 16, 16};
  const PatternPtr parsed = parse_spec("sink(3) | window(6) - strided(2) & causal");
  const PatternPtr grouped = parse_spec("sink(3) | ((window(6) - strided(2)) & causal)");
  const PatternPtr wrong1 = parse_spec("(sink(3) | window(6)) - (strided(2) & causal)");
  const PatternPtr wrong2 = parse_spec("sink(3) | (window(6) - (strided(2) & causal))");
  check_same_pairs(*parsed, *grouped, g);
  auto differs = [&](const PatternPtr& a, const PatternPtr& b) {
    for (i64 i = 0; i < g.nq; ++i)
      for (i64 j = 0; j < g.nk; ++j)
        if (a->allows(g, 0, i, j) != b->allows(g, 0, i, j)) return true;
    return false;
  };
  CHECK(differs(parsed, wrong1));
  CHECK(differs(parsed, wrong2));
  // '-' is left-associative.
  check_same_pairs(*parse_spec("dense - causal - sink(2)"),
                   *parse_spec("(dense - causal) - sink(2)"), g);
  CHECK(differs(parse_spec("dense - causal - sink(2)"), parse_spec("dense - (causal - sink(2))")));
}

TEST_CASE("malformed specs throw SpecError at the right column", "[spec][errors]") {
  // Columns are 1-based; the end of the spec is column size + 1.
  check_spec_error("sliding(4", 10, "expected ',' or ')'");
  check_spec_error("(causal | sink(1)", 18, "expected ')' to close the '(' at column 1");
  check_spec_error("causal, sink(1)", 7, "expected '|', '&', '-' or end of spec, found ','");
  check_spec_error("window(4,)", 10, "expects an integer");
  check_spec_error("causal $ sink(1)", 8, "unexpected character '$'");
  check_spec_error(std::string("causal\x01", 7), 7, "unexpected byte 0x01");
  check_spec_error("", 1, "empty spec");
  check_spec_error("causal |", 9, "expected a pattern name or '('");
  check_spec_error("causal & (sink(1) -)", 20, "expected a pattern name or '('");
  check_spec_error("4", 1, "expected a pattern name or '('");
  check_spec_error("sliding(99999999999999999999)", 9, "too large");
  check_spec_error("causal 4abc", 9, "unexpected 'a' after number 4");
  check_spec_error("window(left=3, 4)", 16, "positional argument after a named one");
  check_spec_error("window(3, left=4)", 11, "argument 'left' is given twice");
  check_spec_error("sliding(width=3)", 9, "has no parameter 'width'; its parameters are: w");
  check_spec_error("sliding(4, 5)", 12, "takes at most 1 argument");
  check_spec_error("sliding", 1, "missing required argument 'w'");
  check_spec_error("sliding([1, 2])", 9, "argument 'w' expects an integer, found a list");
  check_spec_error("sliding(-)", 9, "argument 'w' expects an integer");
  check_spec_error("documents(lengths=5)", 19, "argument 'lengths' expects an integer list");
  check_spec_error("global(tokens=[1, 2)", 20, "expected ',' or ']'");
  check_spec_error("blocks(file=\"abc)", 13, "unterminated string");
  check_spec_error("blocks(file=3)", 13, "expects a quoted string");
  check_spec_error("window(3)(4)", 10, "expected '|', '&', '-' or end of spec, found '('");
  // heads(...) structure.
  check_spec_error("heads(0..3: causal; 2..5: dense)", 21, "overlap");
  check_spec_error("heads(0: causal; 0: dense)", 18, "overlap");
  check_spec_error("heads(0..3, 2: causal)", 13, "listed twice");
  check_spec_error("heads(3..1: causal)", 7, "empty");
  check_spec_error("heads(0..5000: causal)", 7, "allowed 0..4095");
  check_spec_error("heads(0 causal)", 9, "expected ':'");
  check_spec_error("heads(0: causal", 16, "expected ';' or ')'");
  check_spec_error("heads(a: causal)", 7, "expected a head number");
  check_spec_error("heads causal", 7, "expected '('");
  // Control characters: refused inside strings; in the echo, one character each.
  check_spec_error(std::string("blocks(file=\"a\0b\")", 18), 15,
                   "control character 0x00 inside a string");
  check_spec_error("blocks(file=\"a \\\x16qpy\")", 17, "control character 0x16 inside a string");
  CHECK_THROWS_WITH(parse_spec("sliding(4)\t|\nfoo("),
                    Catch::Contains("\n  sliding(4) | foo(\n               ^"));
  // A long spec is cut around the column, with "..." on the cut sides and the caret under it.
  const std::string long_spec = std::string(100, ' ') + "causal | bogus(1)" + std::string(100, ' ');
  CHECK_THROWS_WITH(
      parse_spec(long_spec),
      Catch::Contains(fmt::format("\n  ...{}causal | bogus(1){}...\n  {}^", std::string(31, ' '),
                                  std::string(32, ' '), std::string(3 + 40, ' '))));
  // SpecError is a UsageError (the CLI exits 2).
  CHECK_THROWS_AS(parse_spec("causal |"), spattn::UsageError);
}

TEST_CASE("unknown names suggest the closest registered one", "[spec][errors]") {
  check_spec_error("slidng(4)", 1, "did you mean 'sliding'");
  check_spec_error("causal | slidng(4)", 10, "unknown pattern 'slidng'");
  check_spec_error("casual", 1, "did you mean 'causal'");
  check_spec_error("windw(3)", 1, "did you mean 'window'");
  check_spec_error("xyzzyq", 1, "unknown pattern 'xyzzyq'");
}

TEST_CASE("bad parameter values name the parameter and the allowed range", "[spec][errors]") {
  check_bad_value("sliding(0)", {"sliding", "w = 0", "allowed 1.."});
  check_bad_value("window(-1)", {"window", "left = -1", "allowed 0.."});
  check_bad_value("window(3, -2)", {"right = -2", "allowed 0.."});
  check_bad_value("strided(0)", {"strided", "l = 0", "allowed 1.."});
  check_bad_value("random(0)", {"random", "r = 0", "allowed 1.."});
  check_bad_value("random(2, block=0)", {"block = 0", "allowed 1.."});
  check_bad_value("random(2, seed=-1)", {"seed = -1", "allowed >= 0"});
  check_bad_value("chunked(0)", {"chunked", "c = 0", "allowed 1.."});
  check_bad_value("sink(0)", {"sink", "s = 0", "allowed 1.."});
  check_bad_value("prefix(0)", {"prefix", "p = 0", "allowed 1.."});
  check_bad_value("dilated(2, 0)", {"dilated", "d = 0", "allowed 1.."});
  check_bad_value("dilated(-1, 2)", {"dilated", "w = -1", "allowed 0.."});
  check_bad_value("global()", {"global", "exactly one of n", "tokens"});
  check_bad_value("global(3, tokens=[1])", {"global", "exactly one of n", "tokens"});
  check_bad_value("global(0)", {"n = 0", "allowed 1.."});
  check_bad_value("global(tokens=[3, 3])", {"global", "token 3 is listed twice"});
  check_bad_value("global(tokens=[-1])", {"tokens = -1", "allowed 0.."});
  check_bad_value("documents(lengths=[])", {"documents", "lengths", "at least one"});
  check_bad_value("documents(lengths=[3, 0])", {"documents", "lengths = 0", "allowed 1.."});
  check_bad_value("blocks(file=\"x.npy\", block=0)", {"blocks", "block = 0", "allowed 1.."});
  // Value errors point at the value.
  check_spec_error("sliding(0)", 9, "w = 0");
  check_spec_error("causal | window(-1)", 17, "left = -1");
}

TEST_CASE("booleans are written true/false or 1/0 and print as 1/0", "[spec]") {
  struct Case {
    std::string as_word, as_digit;
  };
  const std::vector<Case> cases = {
      {"ds_fixed(block=16, different_layout_per_head=true, num_different_global_patterns=2)",
       "ds_fixed(block=16, different_layout_per_head=1, num_different_global_patterns=2)"},
      {"ds_fixed(block=16, different_layout_per_head=false, horizontal_global_attention=true)",
       "ds_fixed(block=16, different_layout_per_head=0, horizontal_global_attention=1)"},
      {"phi3_blocksparse(2, 3, block_size=16, homo_head=true)",
       "phi3_blocksparse(2, 3, block_size=16, homo_head=1)"},
      {"phi3_blocksparse(2, 3, 16, false)", "phi3_blocksparse(2, 3, 16, 0)"},
      {"longformer_dilated(3, d=2, autoregressive=true)",
       "longformer_dilated(3, d=2, autoregressive=1)"},
      {"longformer_dilated(3, autoregressive=false) | causal",
       "longformer_dilated(3, autoregressive=0) | causal"},
  };
  for (const Case& c : cases) {
    INFO(c.as_word);
    const PatternPtr word = parse_spec(c.as_word), digit = parse_spec(c.as_digit);
    // The same pattern, printed one way (1/0, or left out at the default), round-tripping.
    CHECK(word->spec() == digit->spec());
    CHECK(word->spec().find("true") == std::string::npos);
    CHECK(word->spec().find("false") == std::string::npos);
    CHECK(parse_spec(word->spec())->spec() == word->spec());
    check_same_pairs(*word, *digit, Geometry{64, 64, 2, 16, 16});
  }
  // true differs from false.
  CHECK(parse_spec("phi3_blocksparse(2, 3, homo_head=true)")->spec() ==
        "phi3_blocksparse(2, 3, homo_head=1)");
  CHECK(parse_spec("phi3_blocksparse(2, 3, homo_head=false)")->spec() == "phi3_blocksparse(2, 3)");
  // Anything else is refused at the value, naming the parameter and the allowed words.
  check_spec_error("phi3_blocksparse(2, 3, homo_head=yes)", 34,
                   "argument 'homo_head' expects a "
                   "boolean (true, false, 1 or 0), found name 'yes'");
  check_spec_error("phi3_blocksparse(2, 3, homo_head=2)", 34, "found number 2");
  check_spec_error("longformer_dilated(3, autoregressive=-1)", 38, "found '-'");
  check_spec_error("longformer_dilated(3, autoregressive=True)", 38, "found name 'True'");
  check_spec_error("ds_dense(different_layout_per_head=\"true\")", 36, "found string");
  check_spec_error("ds_dense(different_layout_per_head=[1])", 36, "expects an integer");
  // Words are values only where a boolean is expected.
  check_spec_error("sliding(true)", 9, "expects an integer");
}

TEST_CASE("geometry mismatches are refused at build time with a clear UsageError",
          "[spec][errors]") {
  check_build_error("documents(lengths=[10, 20])", Geometry{31, 31, 1, 16, 16},
                    {"documents", "30", "nk = 31"});
  check_build_error("causal & documents(lengths=[40])", Geometry{20, 31, 1, 16, 16},
                    {"documents", "40", "nk = 31"});
  check_build_error("global(tokens=[0, 40])", Geometry{32, 32, 1, 16, 16},
                    {"global", "40", "nk = 32"});
  check_build_error("window(3) | global(40)", Geometry{32, 32, 1, 16, 16}, {"global", "nk = 32"});
  check_build_error("heads(0..1: causal)", Geometry{8, 8, 4, 16, 16},
                    {"heads(...)", "head 2", "4 heads"});
  check_build_error("heads(0: causal; 2: dense)", Geometry{8, 8, 3, 16, 16},
                    {"heads(...)", "head 1"});
  check_build_error("heads(0..5: causal)", Geometry{8, 8, 4, 16, 16},
                    {"heads(...)", "head 5", "only 4 heads"});
  const std::string small = write_blocks("small.npy", 1, 2, 2);
  check_build_error("blocks(file=" + quoted(small) + ", block=16)", Geometry{64, 64, 1, 16, 16},
                    {"blocks", "[1, 2, 2]", "4, 4]"});
  const std::string three = write_blocks("three.npy", 3, 4, 4);
  check_build_error("blocks(file=" + quoted(three) + ", block=16)", Geometry{64, 64, 2, 16, 16},
                    {"blocks", "[3, 4, 4]", "heads = 2"});
  // Bad geometries and heads.
  const PatternPtr causal = parse_spec("causal");
  CHECK_THROWS_WITH(spattn::build_layout(*causal, Geometry{0, 8, 1, 16, 16}), Contains("nq = 0"));
  CHECK_THROWS_WITH(spattn::build_layout(*causal, Geometry{8, 8, 1, 48, 16}),
                    Contains("block_q = 48"));
  CHECK_THROWS_WITH(spattn::build_layout(*causal, Geometry{8, 8, 0, 16, 16}),
                    Contains("heads = 0"));
  CHECK_THROWS_AS(spattn::build_block_layout(*causal, Geometry{8, 8, 2, 16, 16}, 2),
                  spattn::UsageError);
  // A missing blocks file is reported when the spec is parsed, naming the file.
  check_bad_value("blocks(file=\"/nonexistent/dir/layout.npy\")",
                  {"/nonexistent/dir/layout.npy", "cannot open"});
}

TEST_CASE("spec length and nesting limits throw SpecError instead of crashing", "[spec][errors]") {
  // Length: exactly at the limit parses, one more character is refused.
  std::string at_limit = "causal" + std::string(spattn::kMaxSpecLength - 6, ' ');
  CHECK(parse_spec(at_limit)->spec() == "causal");
  try {
    parse_spec(at_limit + " ");
    FAIL("no error");
  } catch (const spattn::SpecError& e) {
    CHECK_THAT(e.what(), Contains(std::to_string(spattn::kMaxSpecLength)));
  }
  // A megabyte of garbage is refused the same way.
  CHECK_THROWS_AS(parse_spec(std::string(1 << 20, '(')), spattn::SpecError);

  // Nesting: k parentheses around an atom nest k + 1 deep.
  auto nested = [](int k) { return std::string(k, '(') + "causal" + std::string(k, ')'); };
  CHECK(parse_spec(nested(spattn::kMaxSpecDepth - 1))->spec() == "causal");
  check_spec_error(nested(spattn::kMaxSpecDepth), spattn::kMaxSpecDepth + 1, "nested more than");
  check_spec_error(nested(5000), spattn::kMaxSpecDepth + 1, "nested more than");
  // Deep nesting through heads(...) and through differences.
  std::string heads;
  for (int k = 0; k < 5000; ++k) heads += "heads(0: ";
  heads += "causal";
  for (int k = 0; k < 5000; ++k) heads += ")";
  CHECK_THROWS_AS(parse_spec(heads), spattn::SpecError);
  std::string diffs;
  for (int k = 0; k < 5000; ++k) diffs += "dense - (";
  diffs += "causal" + std::string(5000, ')');
  CHECK_THROWS_AS(parse_spec(diffs), spattn::SpecError);
  // A chain of differences nests one level per '-': up to the depth limit it builds and prints,
  // beyond it (6000 links, far inside the length limit) it is refused, not a stack overflow.
  std::string long_chain = "dense";
  for (int k = 0; k < 6000; ++k) long_chain += " - dense";
  REQUIRE(long_chain.size() < spattn::kMaxSpecLength);
  check_spec_error(long_chain, 5 + 8 * (spattn::kMaxSpecDepth - 1) + 2,
                   "each '-' in a chain counts");
  std::string chain = "dense";
  for (int k = 0; k < spattn::kMaxSpecDepth - 1; ++k) chain += " - sink(1)";
  const PatternPtr p = parse_spec(chain);
  CHECK(p->spec() == chain);
  const spattn::Layout L = spattn::build_layout(*p, Geometry{40, 40, 1, 16, 16});
  CHECK(L.counts().allowed_pairs == 40 * 39);
}
