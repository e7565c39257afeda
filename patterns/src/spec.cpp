// Spec string parser: a hand-written lexer and recursive-descent parser (grammar in spec.hpp).
#include "spattn/patterns/spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "spattn/patterns/combinators.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

enum class Tok { Ident, Int, Real, String, Punct, End };

struct Token {
  Tok kind;
  std::string text;    // identifier, punctuation ("(", "..", ...), or decoded string
  std::int64_t value;  // for Int
  std::size_t column;  // 1-based
  double real = 0;     // for Real (text holds the digits as written)
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::Ident:
      return fmt::format("name '{}'", t.text);
    case Tok::Int:
      return fmt::format("number {}", t.value);
    case Tok::Real:
      return fmt::format("number {}", t.text);
    case Tok::String:
      return fmt::format("string \"{}\"", t.text);
    case Tok::Punct:
      return fmt::format("'{}'", t.text);
    case Tok::End:
      return "end of spec";
  }
  return "?";
}

class Parser {
 public:
  Parser(std::string_view src, const Registry& reg) : src_(src), reg_(reg) {
    if (src.size() > kMaxSpecLength)
      throw SpecError(
          fmt::format("spec is {} characters long; the limit is {}", src.size(), kMaxSpecLength),
          kMaxSpecLength + 1);
    lex();
  }

  PatternPtr parse() {
    if (peek().kind == Tok::End) fail(peek(), "empty spec: expected a pattern such as 'causal'");
    PatternPtr p = expr();
    if (peek().kind != Tok::End)
      fail(peek(),
           fmt::format("expected '|', '&', '-' or end of spec, found {}", describe(peek())));
    return p;
  }

 private:
  [[noreturn]] void fail(std::size_t column, const std::string& msg) const {
    // Show up to 80 characters of context around the column, with a caret under it; "..." marks
    // a cut, and whitespace and control characters show as one character each, so the caret
    // stays under its column (and a NUL cannot end the message early).
    const std::size_t pos = std::min(column > 0 ? column - 1 : 0, src_.size());
    const std::size_t from = pos > 40 ? pos - 40 : 0;
    std::string shown(src_.substr(from, 80));
    for (char& c : shown) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (std::isspace(u))
        c = ' ';
      else if (u < 0x20 || u == 0x7f)
        c = '?';
    }
    const std::string before = from > 0 ? "..." : "";
    const std::string after = from + 80 < src_.size() ? "..." : "";
    throw SpecError(fmt::format("spec error at column {}: {}\n  {}{}{}\n  {}^", column, msg, before,
                                shown, after, std::string(before.size() + pos - from, ' ')),
                    column);
  }
  [[noreturn]] void fail(const Token& t, const std::string& msg) const { fail(t.column, msg); }

  void lex() {
    std::size_t i = 0;
    while (i < src_.size()) {
      const char c = src_[i];
      const std::size_t col = i + 1;
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i;
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        std::size_t j = i;
        while (j < src_.size() &&
               (std::isalnum(static_cast<unsigned char>(src_[j])) || src_[j] == '_'))
          ++j;
        toks_.push_back({Tok::Ident, std::string(src_.substr(i, j - i)), 0, col});
        i = j;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        std::int64_t v = 0;
        std::size_t j = i;
        while (j < src_.size() && std::isdigit(static_cast<unsigned char>(src_[j]))) {
          const int d = src_[j] - '0';
          if (v > (std::numeric_limits<std::int64_t>::max() - d) / 10)
            fail(col, fmt::format("number '{}' is too large (limit {})",
                                  src_.substr(i, std::min<std::size_t>(j - i + 1, 30)),
                                  std::numeric_limits<std::int64_t>::max()));
          v = v * 10 + d;
          ++j;
        }
        // A decimal: digits '.' digits ("0..3" stays a head range).
        if (j + 1 < src_.size() && src_[j] == '.' &&
            std::isdigit(static_cast<unsigned char>(src_[j + 1]))) {
          std::size_t e = j + 1;
          while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
          if (e - i > 40) fail(col, "decimal number is too long (at most 40 characters)");
          const std::string text(src_.substr(i, e - i));
          if (e < src_.size() && (std::isalpha(static_cast<unsigned char>(src_[e])) ||
                                  src_[e] == '_' || src_[e] == '.'))
            fail(e + 1, fmt::format("unexpected '{}' after number {}: write decimals as 0.9",
                                    src_[e], text));
          Token t{Tok::Real, text, 0, col};
          t.real = std::strtod(text.c_str(), nullptr);
          toks_.push_back(t);
          i = e;
          continue;
        }
        if (j < src_.size() &&
            (std::isalpha(static_cast<unsigned char>(src_[j])) || src_[j] == '_'))
          fail(j + 1, fmt::format("unexpected '{}' after number {}: separate names and numbers "
                                  "with ',' or an operator",
                                  src_[j], v));
        toks_.push_back({Tok::Int, {}, v, col});
        i = j;
      } else if (c == '"') {
        std::string s;
        std::size_t j = i + 1;
        bool closed = false;
        while (j < src_.size()) {
          // Checked for the character after a backslash too: it is kept as it is.
          const std::size_t at = src_[j] == '\\' && j + 1 < src_.size() ? j + 1 : j;
          const unsigned char u = static_cast<unsigned char>(src_[at]);
          if (u < 0x20 || u == 0x7f)
            fail(at + 1, fmt::format("control character 0x{:02x} inside a string: strings (file "
                                     "names, modes) must be printable",
                                     u));
          if (src_[j] == '\\' && j + 1 < src_.size()) {
            s += src_[j + 1];
            j += 2;
          } else if (src_[j] == '"') {
            closed = true;
            ++j;
            break;
          } else {
            s += src_[j++];
          }
        }
        if (!closed) fail(col, "unterminated string: expected a closing '\"'");
        toks_.push_back({Tok::String, s, 0, col});
        i = j;
      } else if (c == '.' && i + 1 < src_.size() && src_[i + 1] == '.') {
        toks_.push_back({Tok::Punct, "..", 0, col});
        i += 2;
      } else if (std::string_view("()[],=|&-;:").find(c) != std::string_view::npos) {
        toks_.push_back({Tok::Punct, std::string(1, c), 0, col});
        ++i;
      } else {
        const unsigned char u = static_cast<unsigned char>(c);
        fail(col, std::isprint(u) ? fmt::format("unexpected character '{}'", c)
                                  : fmt::format("unexpected byte 0x{:02x}", u));
      }
    }
    toks_.push_back({Tok::End, {}, 0, src_.size() + 1});
  }

  const Token& peek() const { return toks_[pos_]; }
  const Token& next() { return toks_[pos_ == toks_.size() - 1 ? pos_ : pos_++]; }
  bool is(const char* punct) const { return peek().kind == Tok::Punct && peek().text == punct; }
  const Token& expect(const char* punct, const std::string& context) {
    if (!is(punct))
      fail(peek(), fmt::format("expected '{}' {}, found {}", punct, context, describe(peek())));
    return next();
  }

  struct DepthGuard {
    Parser& p;
    DepthGuard(Parser& parser, const Token& at) : p(parser) {
      if (++p.depth_ > kMaxSpecDepth)
        p.fail(at, fmt::format("spec is nested more than {} levels deep", kMaxSpecDepth));
    }
    ~DepthGuard() { --p.depth_; }
  };

  PatternPtr expr() {
    std::vector<PatternPtr> parts{inter()};
    while (is("|")) {
      next();
      parts.push_back(inter());
    }
    return make_union(std::move(parts));
  }
  PatternPtr inter() {
    std::vector<PatternPtr> parts{diff()};
    while (is("&")) {
      next();
      parts.push_back(diff());
    }
    return make_intersection(std::move(parts));
  }
  // Each '-' nests the tree one level deeper (a - b - c is (a - b) - c), so a chain counts
  // toward the depth limit like parentheses do.
  PatternPtr diff() {
    PatternPtr p = atom();
    const int depth_before = depth_;
    while (is("-")) {
      if (++depth_ >= kMaxSpecDepth)  // the operand after this '-' would exceed the limit
        fail(peek(), fmt::format("spec is nested more than {} levels deep (each '-' in a chain "
                                 "counts: write a - (b | c | ...) instead of a - b - c - ...)",
                                 kMaxSpecDepth));
      next();
      p = make_difference(p, atom());
    }
    depth_ = depth_before;
    return p;
  }

  PatternPtr atom() {
    const Token& t = peek();
    DepthGuard guard(*this, t);
    if (is("(")) {
      next();
      PatternPtr p = expr();
      expect(")", "to close the '(' at column " + std::to_string(t.column));
      return p;
    }
    if (t.kind != Tok::Ident)
      fail(t, fmt::format("expected a pattern name or '(', found {}", describe(t)));
    next();
    if (t.text == "heads") return heads(t);
    const PatternInfo* info = reg_.find(t.text);
    if (!info) {
      const auto close = reg_.suggest(t.text);
      std::string hint = close.empty() ? std::string("run 'spattn patterns' for the list")
                                       : fmt::format("did you mean {}?", quoted(close));
      fail(t, fmt::format("unknown pattern '{}': {}", t.text, hint));
    }
    Args args;
    std::vector<bool> given(info->params.size(), false);
    if (is("(")) {
      const Token& open = next();
      std::size_t positional = 0;
      bool named_seen = false;
      if (!is(")")) {
        while (true) {
          const Token& at = peek();
          std::size_t index;
          if (at.kind == Tok::Ident && toks_[pos_ + 1].kind == Tok::Punct &&
              toks_[pos_ + 1].text == "=") {
            next();
            next();
            index = param_index(*info, at);
            named_seen = true;
          } else {
            if (named_seen)
              fail(at, fmt::format("positional argument after a named one in {}(...)", info->name));
            if (positional >= info->params.size())
              fail(at, fmt::format("{}() takes at most {} argument{}: {}", info->name,
                                   info->params.size(), info->params.size() == 1 ? "" : "s",
                                   signature(*info)));
            index = positional++;
          }
          const ParamSpec& ps = info->params[index];
          if (given[index])
            fail(at, fmt::format("{}: argument '{}' is given twice", info->name, ps.name));
          given[index] = true;
          args.set(ps.name, value(*info, ps));
          if (is(",")) {
            next();
            continue;
          }
          if (is(")")) break;
          fail(peek(), fmt::format("expected ',' or ')' in the arguments of {}(...) opened at "
                                   "column {}, found {}",
                                   info->name, open.column, describe(peek())));
        }
      }
      next();  // ')'
    }
    for (std::size_t k = 0; k < info->params.size(); ++k) {
      const ParamSpec& ps = info->params[k];
      if (given[k]) continue;
      if (ps.required)
        fail(t, fmt::format("{}: missing required argument '{}' ({}); usage: {}", info->name,
                            ps.name, ps.doc, signature(*info)));
      if (ps.default_value) args.set(ps.name, *ps.default_value);
    }
    try {
      return info->make(args);
    } catch (const SpecError&) {
      throw;
    } catch (const UsageError& e) {
      fail(t, e.what());
    }
  }

  static std::string quoted(const std::vector<std::string>& names) {
    std::string s;
    for (std::size_t k = 0; k < names.size(); ++k)
      s += (k ? (k + 1 == names.size() ? " or '" : ", '") : "'") + names[k] + "'";
    return s;
  }

  static std::string signature(const PatternInfo& info) {
    std::string s = info.name + "(";
    for (std::size_t k = 0; k < info.params.size(); ++k) {
      const ParamSpec& ps = info.params[k];
      if (k) s += ", ";
      s += ps.name;
      if (ps.default_value)
        s += fmt::format("={}", to_string(*ps.default_value));
      else if (!ps.required)
        s += "=?";
    }
    return s + ")";
  }

  std::size_t param_index(const PatternInfo& info, const Token& name) {
    for (std::size_t k = 0; k < info.params.size(); ++k)
      if (info.params[k].name == name.text) return k;
    std::string names;
    for (const auto& ps : info.params) names += (names.empty() ? "" : ", ") + ps.name;
    fail(name, fmt::format("{}() has no parameter '{}'; its parameters are: {}", info.name,
                           name.text, names.empty() ? "(none)" : names));
  }

  std::int64_t integer(const PatternInfo& info, const ParamSpec& ps) {
    if (ps.boolean) return boolean(info, ps);
    bool neg = false;
    const Token& start = peek();
    if (is("-")) {
      next();
      neg = true;
    }
    if (peek().kind != Tok::Int)
      fail(start, fmt::format("{}: argument '{}' expects an integer, found {}", info.name, ps.name,
                              describe(peek())));
    const std::int64_t v = neg ? -next().value : next().value;
    if (v < ps.min || v > ps.max)
      fail(start, fmt::format("{}: {} = {} is out of range: allowed {}", info.name, ps.name, v,
                              range_text(ps)));
    return v;
  }

  // A boolean argument: true/false (as in DeepSpeed's JSON) or 1/0.
  std::int64_t boolean(const PatternInfo& info, const ParamSpec& ps) {
    const Token& at = peek();
    if (at.kind == Tok::Ident && (at.text == "true" || at.text == "false"))
      return next().text == "true" ? 1 : 0;
    if (at.kind == Tok::Int && (at.value == 0 || at.value == 1)) return next().value;
    fail(at, fmt::format("{}: argument '{}' expects a boolean (true, false, 1 or 0), found {}",
                         info.name, ps.name, describe(at)));
  }

  static std::string range_text(const ParamSpec& ps) {
    constexpr auto lo = std::numeric_limits<std::int64_t>::min();
    constexpr auto hi = std::numeric_limits<std::int64_t>::max();
    if (ps.min != lo && ps.max != hi) return fmt::format("{}..{}", ps.min, ps.max);
    if (ps.min != lo) return fmt::format(">= {}", ps.min);
    if (ps.max != hi) return fmt::format("<= {}", ps.max);
    return "any integer";
  }

  // A string parameter with fixed choices, written bare (mode=pit64) or quoted.
  std::string choice(const PatternInfo& info, const ParamSpec& ps) {
    const Token& at = peek();
    if (at.kind != Tok::String && at.kind != Tok::Ident)
      fail(at, fmt::format("{}: argument '{}' expects one of {}, found {}", info.name, ps.name,
                           fmt::join(ps.choices, ", "), describe(at)));
    if (std::find(ps.choices.begin(), ps.choices.end(), at.text) == ps.choices.end())
      fail(at, fmt::format("{}: {} = '{}' is not allowed: use one of {}", info.name, ps.name,
                           at.text, fmt::join(ps.choices, ", ")));
    return next().text;
  }

  ParamValue value(const PatternInfo& info, const ParamSpec& ps) {
    const Token& at = peek();
    switch (ps.type) {
      case ParamType::Int:
        if (is("["))
          fail(at, fmt::format("{}: argument '{}' expects an integer, found a list", info.name,
                               ps.name));
        return integer(info, ps);
      case ParamType::IntList: {
        if (!is("["))
          fail(at, fmt::format("{}: argument '{}' expects an integer list such as [0, 17, 512], "
                               "found {}",
                               info.name, ps.name, describe(at)));
        next();
        std::vector<std::int64_t> list;
        if (!is("]")) {
          while (true) {
            if (list.size() >= ps.max_list_size)
              fail(peek(), fmt::format("{}: list '{}' has more than {} elements", info.name,
                                       ps.name, ps.max_list_size));
            list.push_back(integer(info, ps));
            if (is(",")) {
              next();
              continue;
            }
            if (is("]")) break;
            fail(peek(), fmt::format("expected ',' or ']' in list '{}', found {}", ps.name,
                                     describe(peek())));
          }
        }
        next();
        return list;
      }
      case ParamType::String: {
        if (!ps.choices.empty()) return choice(info, ps);
        if (at.kind != Tok::String)
          fail(at, fmt::format("{}: argument '{}' expects a quoted string such as "
                               "{}=\"layout.npy\", found {}",
                               info.name, ps.name, ps.name, describe(at)));
        return next().text;
      }
      case ParamType::Real: {
        if (at.kind != Tok::Real && at.kind != Tok::Int)
          fail(at, fmt::format("{}: argument '{}' expects a decimal number such as 0.9, found {}",
                               info.name, ps.name, describe(at)));
        const double v = at.kind == Tok::Real ? at.real : static_cast<double>(at.value);
        const bool low = ps.real_min_open ? !(v > ps.real_min) : !(v >= ps.real_min);
        if (low || !(v <= ps.real_max))
          fail(at, fmt::format("{}: {} = {} is out of range: allowed {}{}..{}]", info.name, ps.name,
                               at.kind == Tok::Real ? at.text : std::to_string(at.value),
                               ps.real_min_open ? "(" : "[", ps.real_min, ps.real_max));
        next();
        return v;
      }
    }
    fail(at, "internal: unknown parameter type");
  }

  PatternPtr heads(const Token& kw) {
    const Token& open =
        expect("(", "after 'heads' (usage: heads(0..3: sliding(1024); 4..7: dense))");
    std::vector<HeadGroup> groups;
    while (true) {
      HeadGroup grp;
      while (true) {
        const Token& a = peek();
        if (a.kind != Tok::Int)
          fail(a, fmt::format("expected a head number or range such as 0..3 in heads(...), "
                              "found {}",
                              describe(a)));
        next();
        std::int64_t lo = a.value, hi = a.value;
        if (is("..")) {
          next();
          const Token& b = peek();
          if (b.kind != Tok::Int)
            fail(b, fmt::format("expected the last head of the range {}..N, found {}", lo,
                                describe(b)));
          next();
          hi = b.value;
        }
        if (hi < lo) fail(a, fmt::format("head range {}..{} is empty (write low..high)", lo, hi));
        if (hi >= kMaxHeads)
          fail(a, fmt::format("head {} is out of range: allowed 0..{}", hi, kMaxHeads - 1));
        for (const auto& g : groups)
          for (auto [glo, ghi] : g.pattern ? g.ranges : std::vector<std::pair<int, int>>{})
            if (lo <= ghi && glo <= hi)
              fail(a,
                   fmt::format("heads {}..{} overlap an earlier group ({}..{})", lo, hi, glo, ghi));
        for (auto [glo, ghi] : grp.ranges)
          if (lo <= ghi && glo <= hi)
            fail(a, fmt::format("heads {}..{} are listed twice in one group", lo, hi));
        grp.ranges.emplace_back(static_cast<int>(lo), static_cast<int>(hi));
        if (is(",")) {
          next();
          continue;
        }
        break;
      }
      expect(":", "after the head list (e.g. 0..3: causal)");
      grp.pattern = expr();
      groups.push_back(std::move(grp));
      if (is(";")) {
        next();
        continue;
      }
      if (is(")")) break;
      fail(peek(), fmt::format("expected ';' or ')' in heads(...) opened at column {}, found {}",
                               open.column, describe(peek())));
    }
    next();
    (void)kw;
    return make_per_head(std::move(groups));
  }

  std::string_view src_;
  const Registry& reg_;
  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

PatternPtr parse_spec(std::string_view spec, const Registry& registry) {
  return Parser(spec, registry).parse();
}

}  // namespace spattn
