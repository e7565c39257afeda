#pragma once
// Errors thrown by spattn. Every message names the bad value, where it is, and what is allowed.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace spattn {

// Base of every error spattn throws on bad input or refused work.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad input supplied by the user (spec string, parameter, shape, file contents). The CLI exits 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A spec string that does not parse or names an unknown pattern. `column` is 1-based.
class SpecError : public UsageError {
 public:
  SpecError(const std::string& message, std::size_t column)
      : UsageError(message), column_(column) {}
  std::size_t column() const { return column_; }

 private:
  std::size_t column_;
};

// Work refused up front because its memory estimate exceeds the budget. The CLI exits 1.
class BudgetError : public Error {
 public:
  using Error::Error;
};

// User text quoted in a message: between `quote` characters, at most `max_chars` characters
// ("..." marks a cut), control characters written \xNN, so that a NUL cannot end the message
// early and no escape sequence reaches the terminal.
std::string quoted(std::string_view text, std::size_t max_chars = 60, char quote = '"');

}  // namespace spattn
