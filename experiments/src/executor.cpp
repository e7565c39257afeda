// Executor names (see executor.hpp).
#include "spattn/experiments/executor.hpp"

#include <fmt/format.h>

namespace spattn::experiments {

std::string_view executor_name(Executor e) {
  switch (e) {
    case Executor::Flash:
      return "flash";
    case Executor::Textbook:
      return "textbook";
  }
  return "flash";
}

std::optional<Executor> parse_executor(std::string_view name) {
  for (const Executor e : kExecutors)
    if (executor_name(e) == name) return e;
  return std::nullopt;
}

std::vector<std::string> executor_name_list() {
  std::vector<std::string> out;
  for (const Executor e : kExecutors) out.emplace_back(executor_name(e));
  return out;
}

std::string executor_names() {
  return fmt::format("{}", fmt::join(executor_name_list(), ", "));
}

}  // namespace spattn::experiments
