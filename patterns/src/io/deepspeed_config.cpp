// A DeepSpeed config file's sparse_attention section mapped to the equivalent ds_* spec string
// (deepspeed_config.hpp); the pattern deepspeed(file=...) is builtin/deepspeed_file.cpp.
#include "spattn/patterns/io/deepspeed_config.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/regular_file.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn {
namespace {

using nlohmann::json;

enum class Kind { Int, Bool, IntList, IntListOrNull, String };

// Every key of DeepSpeed's sparse_attention section (deepspeed/runtime/constants.py) and its
// JSON type.
const std::map<std::string, Kind>& all_keys() {
  static const std::map<std::string, Kind> keys = {
      {"block", Kind::Int},
      {"different_layout_per_head", Kind::Bool},
      {"num_local_blocks", Kind::Int},
      {"num_global_blocks", Kind::Int},
      {"attention", Kind::String},
      {"horizontal_global_attention", Kind::Bool},
      {"num_different_global_patterns", Kind::Int},
      {"num_random_blocks", Kind::Int},
      {"local_window_blocks", Kind::IntList},
      {"global_block_indices", Kind::IntList},
      {"global_block_end_indices", Kind::IntListOrNull},
      {"num_sliding_window_blocks", Kind::Int},
  };
  return keys;
}

// The keys DeepSpeed's config parser reads for each mode (get_sparse_*_config), in its order.
const std::map<std::string, std::vector<std::string>>& mode_keys() {
  static const std::map<std::string, std::vector<std::string>> modes = {
      {"dense", {"block"}},
      {"fixed",
       {"block", "different_layout_per_head", "num_local_blocks", "num_global_blocks", "attention",
        "horizontal_global_attention", "num_different_global_patterns"}},
      {"variable",
       {"block", "different_layout_per_head", "num_random_blocks", "local_window_blocks",
        "global_block_indices", "global_block_end_indices", "attention",
        "horizontal_global_attention"}},
      {"bigbird",
       {"block", "different_layout_per_head", "num_random_blocks", "num_sliding_window_blocks",
        "num_global_blocks"}},
      {"bslongformer",
       {"block", "different_layout_per_head", "num_sliding_window_blocks", "global_block_indices",
        "global_block_end_indices"}},
  };
  return modes;
}

std::string json_type(const json& v) {
  if (v.is_boolean()) return fmt::format("the boolean {}", v.dump());
  if (v.is_number()) return fmt::format("the number {}", v.dump());
  if (v.is_string()) return fmt::format("the string {}", v.dump());
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

std::int64_t json_int(const json& v, const std::string& where) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > (std::uint64_t{1} << 62))
      throw UsageError(fmt::format("{}: {} is too large", where, v.dump()));
    return v.get<std::int64_t>();
  }
  throw UsageError(fmt::format("{} must be an integer, found {}", where, json_type(v)));
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& k : v) s += (s.empty() ? "" : ", ") + k;
  return s;
}

}  // namespace

std::string deepspeed_config_spec(std::string_view text, const std::string& source) {
  json root;
  // DeepSpeed refuses duplicate keys in a config file (dict_raise_error_on_duplicate_keys).
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  const json::parser_callback_t track_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == json::parse_event_t::key && !open_objects.empty() &&
        !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    // DeepSpeed reads its config files with hjson: allow at least comments.
    root = json::parse(text.begin(), text.end(), track_keys, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    throw UsageError(fmt::format("{}: malformed JSON: {}", source, e.what()));
  } catch (const json::exception& e) {  // e.g. a number beyond double's range (1e400)
    throw UsageError(fmt::format("{}: unreadable JSON value: {}", source, e.what()));
  }
  if (!duplicate.empty())
    throw UsageError(
        fmt::format("{}: key {} appears twice in one object", source, spattn::quoted(duplicate)));
  if (!root.is_object())
    throw UsageError(fmt::format(
        "{}: expected a JSON object (a DeepSpeed config or its sparse_attention section), found "
        "{}",
        source, json_type(root)));
  std::string where = fmt::format("{}: the bare sparse_attention section", source);
  const json* section = &root;
  if (root.contains("sparse_attention")) {
    section = &root["sparse_attention"];
    where = fmt::format("{}: \"sparse_attention\"", source);
    if (!section->is_object())
      throw UsageError(fmt::format("{} must be an object, found {}", where, json_type(*section)));
  }
  std::string mode = "fixed";  // DeepSpeed's default mode
  if (section->contains("mode")) {
    const json& m = (*section)["mode"];
    if (!m.is_string())
      throw UsageError(fmt::format("{}: \"mode\" must be a string, found {}", where, json_type(m)));
    mode = m.get<std::string>();
  }
  const auto mode_it = mode_keys().find(mode);
  if (mode_it == mode_keys().end())
    throw UsageError(fmt::format(
        "{}: unknown mode {}: DeepSpeed's config accepts \"dense\", \"fixed\", \"variable\", "
        "\"bigbird\" or \"bslongformer\"",
        where, spattn::quoted(mode)));
  const std::vector<std::string>& readable = mode_it->second;

  std::vector<std::string> args;
  bool random_given = false;
  for (const auto& [key, value] : section->items()) {
    if (key == "mode") continue;
    const auto kind_it = all_keys().find(key);
    if (kind_it == all_keys().end())
      throw UsageError(
          fmt::format("{}: unknown key {}; DeepSpeed reads these keys for mode \"{}\": mode, {}",
                      where, spattn::quoted(key), mode, join(readable)));
    if (std::find(readable.begin(), readable.end(), key) == readable.end())
      throw UsageError(fmt::format(
          "{}: key \"{}\" is not read by DeepSpeed's config parser for mode \"{}\" (DeepSpeed "
          "would silently ignore it); the keys for this mode are: mode, {}",
          where, key, mode, join(readable)));
    const std::string at = fmt::format("{}: {}", where, spattn::quoted(key));
    switch (kind_it->second) {
      case Kind::Int:
        args.push_back(fmt::format("{}={}", key, json_int(value, at)));
        break;
      case Kind::Bool:
        if (!value.is_boolean())
          throw UsageError(fmt::format("{} must be true or false, found {}", at, json_type(value)));
        args.push_back(fmt::format("{}={}", key, value.get<bool>() ? 1 : 0));
        break;
      case Kind::IntListOrNull:
        if (value.is_null()) break;  // DeepSpeed's None
        [[fallthrough]];
      case Kind::IntList: {
        if (!value.is_array())
          throw UsageError(fmt::format("{} must be an array of integers{}, found {}", at,
                                       kind_it->second == Kind::IntListOrNull ? " or null" : "",
                                       json_type(value)));
        std::vector<std::int64_t> list;
        for (std::size_t k = 0; k < value.size(); ++k)
          list.push_back(json_int(value[k], fmt::format("{}[{}]", at, k)));
        args.push_back(fmt::format("{}={}", key, to_string(ParamValue{list})));
        break;
      }
      case Kind::String:
        if (!value.is_string())
          throw UsageError(fmt::format("{} must be a string, found {}", at, json_type(value)));
        args.push_back(fmt::format("{}={}", key, to_string(ParamValue{value.get<std::string>()})));
        break;
    }
    if (key == "num_random_blocks") random_given = true;
  }
  // DeepSpeed's config default of num_random_blocks is 0, while BigBirdSparsityConfig's own
  // default (that of ds_bigbird) is 1.
  if (mode == "bigbird" && !random_given) args.push_back("num_random_blocks=0");
  const std::string spec = fmt::format("ds_{}({})", mode, join(args));
  try {
    return parse_spec(spec)->spec();
  } catch (const UsageError& e) {
    // Long lists make long specs: show the start of the spec and of the parser's message.
    const std::string what = e.what();
    throw UsageError(fmt::format(
        "{} (mode \"{}\") maps to {}{}, which is rejected: {}{}", where, mode, spec.substr(0, 200),
        spec.size() > 200 ? fmt::format("... ({} characters)", spec.size()) : "",
        what.substr(0, 400), what.size() > 400 ? "..." : ""));
  }
}

std::string deepspeed_config_spec_from_file(const std::string& path) {
  constexpr std::int64_t kMaxBytes = std::int64_t{16} << 20;
  std::int64_t len = 0;
  std::ifstream in = open_regular_file(path, "a DeepSpeed config file", len);
  if (len > kMaxBytes)
    throw UsageError(fmt::format("{}: {} bytes is too large for a DeepSpeed config (limit {})",
                                 path, len, kMaxBytes));
  std::string text(static_cast<std::size_t>(len), '\0');
  in.read(text.data(), len);
  if (!in) throw UsageError(fmt::format("{}: read error", path));
  return deepspeed_config_spec(text, path);
}

}  // namespace spattn
