// Unknown long options: named, with the command they were given to and the closest option it
// has (CLI11 alone reports them only after any missing required option, without a suggestion).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "cli_common.hpp"
#include "spattn/patterns/edit_distance.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::cli {
namespace {

// Lower case, '_' as '-': --Seq_Len and --seq-len compare equal.
std::string normalized(const std::string& s) {
  std::string out;
  for (char c : s)
    out += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Names researchers bring from other tools and from experiment files, and what they mean here.
const std::map<std::string, std::string>& aliases() {
  static const std::map<std::string, std::string> a = {
      {"seq-len", "n"},   {"seqlen", "n"},         {"seq", "n"},           {"length", "n"},
      {"len", "n"},       {"tokens", "n"},         {"num-heads", "heads"}, {"dim", "d"},
      {"head-size", "d"}, {"block-size", "block"}, {"kv-head", "kv-heads"}};
  return a;
}

// The closest of `known` to `name`, or "" when none is close.
std::string closest(const std::string& name, const std::set<std::string>& known) {
  const std::string n = normalized(name);
  for (const std::string& k : known)
    if (normalized(k) == n) return k;
  if (auto it = aliases().find(n); it != aliases().end() && known.count(it->second))
    return it->second;
  // Ranked by (distance, counting a known option that extends the name as 1, --head ->
  // --heads; then the plain edit distance).
  std::string best;
  std::pair<std::size_t, std::size_t> best_score{std::max<std::size_t>(2, n.size() / 3) + 1, 0};
  for (const std::string& k : known) {
    const std::string kn = normalized(k);
    const std::size_t plain = edit_distance(n, kn);
    const bool extends = kn.size() > n.size() && kn.compare(0, n.size(), n) == 0;
    const std::pair<std::size_t, std::size_t> score{
        extends ? std::min<std::size_t>(plain, 1) : plain, plain};
    if (score < best_score) best_score = score, best = k;
  }
  return best;
}

void add_long_names(const CLI::App& app, std::set<std::string>& out) {
  for (const CLI::Option* o : app.get_options())
    for (const std::string& n : o->get_lnames()) out.insert(n);
}

}  // namespace

void check_long_options(CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* command = nullptr;
  std::set<std::string> known;
  add_long_names(app, known);  // the program's own (--plugin, --help, --version) work anywhere
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return;  // the rest are values
    if (!command && a.rfind("-", 0) != 0) {
      for (CLI::App* sub : app.get_subcommands([&](CLI::App* s) { return s->get_name() == a; })) {
        command = sub;
        add_long_names(*sub, known);
      }
      continue;
    }
    if (a.size() <= 2 || a.rfind("--", 0) != 0) continue;
    const std::string name =
        a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
    if (known.count(name)) continue;
    const std::string where = command ? "spattn " + command->get_name() : std::string("spattn");
    const std::string suggestion = closest(name, known);
    throw UsageError(fmt::format(
        "unknown option '--{}' for '{}'{}; '{} --help' lists its options", name, where,
        suggestion.empty() ? std::string() : fmt::format(" (did you mean '--{}'?)", suggestion),
        where));
  }
}

}  // namespace spattn::cli
