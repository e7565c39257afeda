#pragma once
// Which attention executor a measurement times. One enum for `spattn run --executor`, the
// experiment file's `executor` axis, point JSON and the Measurement record.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spattn::experiments {

enum class Executor {
  Flash,     // the block-sparse flash executor (spattn::attention): the fast path
  Textbook,  // the dense materialized baseline (spattn::textbook_attention): scores, softmax, P V
};

// Every executor, in the order the names list them.
inline constexpr std::array<Executor, 2> kExecutors = {Executor::Flash, Executor::Textbook};

// "flash" | "textbook".
std::string_view executor_name(Executor e);
// The executor named `name` (exact, lower case), or nullopt.
std::optional<Executor> parse_executor(std::string_view name);
// {"flash", "textbook"}: the allowed names, in kExecutors order (the executor axis's values).
std::vector<std::string> executor_name_list();
// "flash, textbook": the allowed names, for error messages.
std::string executor_names();

}  // namespace spattn::experiments
