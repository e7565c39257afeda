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
  for (Executor e : {Executor::Flash, Executor::Textbook})
    if (executor_name(e) == name) return e;
  return std::nullopt;
}

std::string executor_names() {
  return "flash, textbook";
}

}  // namespace spattn::experiments
