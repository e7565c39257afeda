#pragma once
// results.jsonl: one JSON object per line (format in experiments/README.md), appended and made
// durable one record at a time so that a crash or kill of the sweep loses no finished point.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace spattn::experiments {

struct JsonLines {
  std::vector<nlohmann::json> records;  // every complete non-blank line, in file order
  std::vector<int> line_numbers;        // 1-based line of each record
  std::int64_t complete_bytes = 0;      // length of the prefix made of complete lines
  bool partial_tail = false;            // the file ends in a line without its newline
  int partial_line = 0;                 // 1-based line of that partial tail (0: none)
};

// Reads a results file (the one reader of results.jsonl: resume and reports both use it). A
// last line without its terminating newline is the trace of a write cut short by a kill: it is
// ignored (partial_tail). Throws UsageError when the file cannot be read, and naming the file
// and the line number ("FILE line N: ...") for any complete line that is not a JSON object.
JsonLines read_json_lines(const std::filesystem::path& path);

// Appends records to a results file. Opening truncates a partial last line (see read_json_lines),
// so the next record starts on a line of its own; the writer holds an exclusive flock on the file
// while it lives (a second writer throws std::runtime_error).
class ResultsWriter {
 public:
  explicit ResultsWriter(const std::filesystem::path& path);
  ~ResultsWriter();
  ResultsWriter(const ResultsWriter&) = delete;
  ResultsWriter& operator=(const ResultsWriter&) = delete;

  // Writes `record` as one line with a single write(2) on an O_APPEND descriptor and
  // fdatasync()s it before returning. Throws std::runtime_error on I/O errors.
  void append(const nlohmann::json& record);
  // The same, keys in the record's own order (a Measurement's to_json).
  void append_ordered(const nlohmann::ordered_json& record);

 private:
  void append_line(std::string line);  // `line` without its newline
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace spattn::experiments
