// Executor names (see executor.hpp).
#include "spattn/experiments/executor.hpp"

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

std::string executor_names() {
  std::string out;
  for (const Executor e : kExecutors) {
    if (!out.empty()) out += ", ";
    out += executor_name(e);
  }
  return out;
}

}  // namespace spattn::experiments
