#pragma once
// The sweep axes as one table. Each row gives an axis's TOML key, value type, allowed values,
// default, whether [quick] may override it, its name in point keys and point JSON, and how it
// sets a SweepPoint. The loader, the [quick] overrides, the point expansion, point keys and point
// JSON all walk this table, so adding an axis is one row in axes.cpp plus the SweepPoint field
// it sets.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace spattn::experiments {

struct SweepPoint;

// One value of an axis: an integer (seq_len, head_dim, ...) or a name (tile_mode, executor).
using AxisValue = std::variant<std::int64_t, std::string>;

// The value as it appears in point keys and messages: "64", "auto".
std::string axis_value_text(const AxisValue& v);

enum class AxisKind {
  Int,     // an integer lo..hi
  Length,  // a token count lo..hi, also written as a geometric range {from, to, factor}
  Block,   // a tile size: 16, 32, 64 or 128
  Name,    // one of `names`
  Policy,  // a KV cache policy spec (kvcache/policy.hpp), kept in its canonical form
};

struct AxisDef {
  std::string_view name{};   // TOML key, e.g. "head_dim"
  std::string_view key{};    // name in point keys, e.g. "d"
  std::string_view field{};  // name in point JSON, e.g. "head_dim"
  AxisKind kind = AxisKind::Int;
  std::int64_t lo = 0, hi = 0;       // Int, Length: the allowed range
  std::string_view meaning{};        // Int, Length: a note for messages, e.g. "0: all cores"
  std::vector<std::string> names{};  // Name: the allowed values
  std::optional<AxisValue> default_value{};  // nullopt: the axis is required
  bool quick = true;                         // [quick] may override it
  // The axes of the first key format appear in every key. Any axis added later must leave this
  // false: it then appears in the key only when the point's value differs from its default, so
  // the keys of older runs (matched by --resume) stay the same.
  bool always_in_key = false;
  // Sets the point's field. Rows are applied in table order, so a row may read earlier fields
  // (kv_heads 0 resolves to the point's heads).
  void (*set)(SweepPoint& p, const AxisValue& v) = nullptr;
  // The point's value as keys and JSON show it (kv_heads resolved).
  AxisValue (*get)(const SweepPoint& p) = nullptr;
};

// Every axis, in expansion order (the first varies slowest, after the patterns).
const std::vector<AxisDef>& axis_table();
// The position of the axis `name` in axis_table(); throws std::out_of_range for another name.
std::size_t axis_index(std::string_view name);

// The values of every axis for one grid (full, or with [quick] applied), each in file order.
class AxisValues {
 public:
  // Every axis at its default; a required axis (seq_len) has no value yet.
  AxisValues();

  // The values of the axis `name` (its TOML key); throws std::out_of_range for another name.
  const std::vector<AxisValue>& operator[](std::string_view name) const;
  std::vector<AxisValue>& operator[](std::string_view name);
  // The values of axis_table()[i].
  const std::vector<AxisValue>& at(std::size_t i) const { return values_.at(i); }
  std::vector<AxisValue>& at(std::size_t i) { return values_.at(i); }

  // Typed copies of an integer axis or a name axis; throw std::bad_variant_access otherwise.
  std::vector<std::int64_t> ints(std::string_view name) const;
  std::vector<std::string> names(std::string_view name) const;

  bool operator==(const AxisValues&) const = default;

 private:
  std::vector<std::vector<AxisValue>> values_;  // by position in axis_table()
};

}  // namespace spattn::experiments
