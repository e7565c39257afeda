#include "spattn/patterns/io/regular_file.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "spattn/patterns/error.hpp"

namespace spattn {

std::ifstream open_regular_file(const std::string& path, std::string_view what,
                                std::int64_t& size) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found)
    throw UsageError(fmt::format("{} does not exist: cannot open it as {}", path, what));
  if (ec) throw UsageError(fmt::format("{}: cannot open file: {}", path, ec.message()));
  if (!fs::is_regular_file(st)) {
    const char* kind = fs::is_directory(st)                                 ? "a directory"
                       : fs::is_fifo(st)                                    ? "a FIFO (named pipe)"
                       : fs::is_socket(st)                                  ? "a socket"
                       : fs::is_character_file(st) || fs::is_block_file(st) ? "a device"
                                                                            : "not a regular file";
    throw UsageError(fmt::format("{}: is {}, not {}: give a regular file", path, kind, what));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("{}: cannot open file: {}", path, std::strerror(errno)));
  in.seekg(0, std::ios::end);
  const std::streamoff len = in.tellg();
  in.seekg(0);
  if (len < 0 || !in) throw UsageError(fmt::format("{}: cannot read file", path));
  size = static_cast<std::int64_t>(len);
  return in;
}

}  // namespace spattn
