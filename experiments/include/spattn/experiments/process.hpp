#pragma once
// Running one command in a child process with an address-space limit and a wall-clock timeout,
// capturing its output and measuring its peak memory: the isolation a sweep point runs in.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace spattn::experiments {

struct ChildOptions {
  std::vector<std::string> argv;         // argv[0] is the program path (no PATH search)
  std::int64_t address_space_bytes = 0;  // RLIMIT_AS of the child, bytes; 0: inherit
  double timeout_seconds = 0;  // wall clock; SIGKILL to the child's process group; 0: none
  std::size_t max_stdout_bytes = 16 << 20;  // stdout beyond this is read and dropped
  std::size_t max_stderr_bytes = 64 << 10;  // stderr keeps its last this many bytes
};

struct ChildResult {
  enum class End {
    Exited,       // exit_code is valid
    Signaled,     // killed by `signal` (not by us)
    TimedOut,     // killed by us at the timeout
    Interrupted,  // killed by us because the parent received SIGINT/SIGTERM
  };
  End end = End::Exited;
  int exit_code = 0;
  int signal = 0;
  std::string out;                  // captured stdout (at most max_stdout_bytes)
  std::string err;                  // the tail of stderr (at most max_stderr_bytes)
  std::int64_t peak_rss_bytes = 0;  // the child's ru_maxrss (wait4), bytes
  double wall_seconds = 0;          // from spawn to reaping
};

// Runs argv in a child in its own process group, stdin from /dev/null, stdout and stderr
// captured, and waits for it while enforcing the timeout and watching for interruption (see
// InterruptGuard). The child is killed (SIGKILL) if this process dies first (PR_SET_PDEATHSIG).
// Throws std::runtime_error when the child cannot be started (fork, pipes, exec of argv[0]).
ChildResult run_child(const ChildOptions& options);

// While an InterruptGuard lives, SIGINT and SIGTERM do not terminate the process: they set a flag
// (interrupt_signal()) that run_child and the sweep loop check; the previous handlers come back
// on destruction. A second signal while the first is pending exits at once (128 + signal).
// Not nestable.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

// The signal number received while an InterruptGuard was active, or 0.
int interrupt_signal();

// "SIGSEGV (Segmentation fault)" for a signal number.
std::string signal_description(int signal);

// False in builds whose runtime reserves huge address space up front (AddressSanitizer), where
// RLIMIT_AS would keep every child from starting; run_child then ignores address_space_bytes.
bool address_space_limit_supported();

}  // namespace spattn::experiments
