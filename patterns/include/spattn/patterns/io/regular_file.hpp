#pragma once
// Opening a user-named input file safely: only regular files, whose size is known up front.
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

namespace spattn {

// Opens `path` for binary reading and sets `size` to its length in bytes. Refuses with
// UsageError, naming the path and `what` it should be (e.g. "a .npy file"), anything but a
// regular file: opening a FIFO blocks until a writer appears, and a directory or device reads
// as a file of no or endless length.
std::ifstream open_regular_file(const std::string& path, std::string_view what, std::int64_t& size);

}  // namespace spattn
