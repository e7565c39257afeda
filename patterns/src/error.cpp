#include "spattn/patterns/error.hpp"

#include <fmt/format.h>

namespace spattn {

std::string quoted(std::string_view text, std::size_t max_chars, char quote) {
  std::string out(1, quote);
  for (std::size_t i = 0; i < text.size() && i < max_chars; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  if (text.size() > max_chars) out += "...";
  return out + quote;
}

}  // namespace spattn
