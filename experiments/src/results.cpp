// results.jsonl reading and appending.
#include "spattn/experiments/results.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/regular_file.hpp"

namespace spattn::experiments {

JsonLines read_json_lines(const std::filesystem::path& path) {
  std::int64_t size = 0;
  std::ifstream in = open_regular_file(path.string(), "a results file (JSON lines)", size);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  JsonLines f;
  std::size_t begin = 0;
  int line = 0;
  while (begin < text.size()) {
    const std::size_t end = text.find('\n', begin);
    ++line;
    if (end == std::string::npos) {
      f.partial_tail = true;
      f.partial_line = line;
      break;
    }
    const std::string_view body(text.data() + begin, end - begin);
    if (body.find_first_not_of(" \t\r") != std::string_view::npos) {
      nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        throw UsageError(
            fmt::format("{} line {}: not a JSON object ({:.80}); each line of a "
                        "results file is one JSON object",
                        path.string(), line, std::string(body)));
      f.records.push_back(std::move(j));
      f.line_numbers.push_back(line);
    }
    begin = end + 1;
    f.complete_bytes = static_cast<std::int64_t>(begin);
  }
  return f;
}

ResultsWriter::ResultsWriter(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error(
        fmt::format("cannot open {} for appending: {}", path.string(), std::strerror(errno)));
  // Two sweeps appending to one file would run points twice: the second one is refused.
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error(
        fmt::format("{} is in use by another sweep (it holds the file's lock)", path.string()));
  }
  const JsonLines existing = read_json_lines(path);
  if (existing.partial_tail && ::ftruncate(fd_, static_cast<off_t>(existing.complete_bytes)) != 0) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error(fmt::format("cannot truncate the partial last line of {}: {}",
                                         path.string(), std::strerror(e)));
  }
}

ResultsWriter::~ResultsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultsWriter::append(const nlohmann::json& record) {
  // Invalid UTF-8 (e.g. in a child's stderr) is replaced rather than failing the record.
  append_line(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void ResultsWriter::append_ordered(const nlohmann::ordered_json& record) {
  append_line(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void ResultsWriter::append_line(std::string line) {
  line += '\n';
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t w = ::write(fd_, line.data() + done, line.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(
          fmt::format("cannot write to {}: {}", path_.string(), std::strerror(errno)));
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fdatasync(fd_) != 0 && errno != EINVAL)
    throw std::runtime_error(
        fmt::format("cannot flush {}: {}", path_.string(), std::strerror(errno)));
}

}  // namespace spattn::experiments
