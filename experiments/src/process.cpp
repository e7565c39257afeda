// Child processes for sweep points: fork + exec (nothing but async-signal-safe system calls
// between the two, because the parent runs TBB threads), limits set in the child before exec,
// output drained with poll() so a chatty child never blocks on a full pipe.
#include "spattn/experiments/process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <stdexcept>

namespace spattn::experiments {
namespace {

std::atomic<int> g_interrupt{0};
struct sigaction g_old_int, g_old_term;

// The first signal asks the sweep to stop after killing its child; a second one (the user
// insisting) ends the process at once: results.jsonl is valid after any single write.
extern "C" void on_interrupt(int sig) {
  if (g_interrupt.exchange(sig) != 0) ::_exit(128 + sig);
}

// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

void make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
}

// Reads what is available from `fd` into `sink`; returns false at end of file or on error.
bool drain(int fd, std::string& sink, std::size_t limit, bool keep_tail) {
  char buf[65536];
  for (;;) {
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got > 0) {
      if (keep_tail) {
        sink.append(buf, static_cast<std::size_t>(got));
        // Trim in large steps so a long stream costs amortized O(bytes).
        if (sink.size() > 2 * limit) sink.erase(0, sink.size() - limit);
      } else if (sink.size() < limit) {
        sink.append(buf, std::min(static_cast<std::size_t>(got), limit - sink.size()));
      }
      continue;
    }
    if (got == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

void kill_group(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);  // in case the child had not reached setpgid yet
}

}  // namespace

bool address_space_limit_supported() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return false;
#else
  return true;
#endif
#else
  return true;
#endif
}

InterruptGuard::InterruptGuard() {
  g_interrupt.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking call returns EINTR and the loop looks at the flag
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptGuard::~InterruptGuard() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

int interrupt_signal() {
  return g_interrupt.load();
}

std::string signal_description(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  const char* text = ::strsignal(signal);
  if (abbrev == nullptr) return fmt::format("signal {}", signal);
  return fmt::format("SIG{} ({})", abbrev, text != nullptr ? text : "unknown");
}

ChildResult run_child(const ChildOptions& options) {
  if (options.argv.empty()) throw std::invalid_argument("run_child: empty argv");
  // Everything the child needs is prepared here: after fork it may only make system calls.
  std::vector<char*> argv;
  for (const std::string& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  bool set_limit = false;
  struct rlimit limit {};
  if (options.address_space_bytes > 0 && address_space_limit_supported()) {
    ::getrlimit(RLIMIT_AS, &limit);
    const auto wanted = static_cast<rlim_t>(options.address_space_bytes);
    if (limit.rlim_max == RLIM_INFINITY || wanted < limit.rlim_max)
      limit.rlim_cur = wanted;
    else
      limit.rlim_cur = limit.rlim_max;
    set_limit = true;
  }

  Fd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (dev_null.get() < 0)
    throw std::runtime_error(fmt::format("cannot open /dev/null: {}", std::strerror(errno)));
  Fd out_r, out_w, err_r, err_w, exec_r, exec_w;
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);
  make_pipe(exec_r, exec_w);  // carries errno when exec fails; closed by a successful exec

  const pid_t parent = ::getpid();
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("cannot fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);  // our own group: the terminal's Ctrl-C goes to the parent only
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(dev_null.get(), 0);
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    if (set_limit) ::setrlimit(RLIMIT_AS, &limit);
    ::execv(argv[0], argv.data());
    const int e = errno;
    [[maybe_unused]] const ssize_t w = ::write(exec_w.get(), &e, sizeof e);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // both sides set it, so the group exists whichever runs first
  out_w.reset();
  err_w.reset();
  exec_w.reset();

  int exec_errno = 0;
  ssize_t got;
  do got = ::read(exec_r.get(), &exec_errno, sizeof exec_errno);
  while (got < 0 && errno == EINTR);
  if (got > 0) {
    int status;
    ::waitpid(pid, &status, 0);
    throw std::runtime_error(
        fmt::format("cannot run {}: {}", options.argv[0], std::strerror(exec_errno)));
  }

  ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
  ChildResult r;
  bool out_open = true, err_open = true, reaped = false;
  int status = 0;
  struct rusage usage {};
  const auto deadline =
      options.timeout_seconds > 0
          ? start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(options.timeout_seconds))
          : std::chrono::steady_clock::time_point::max();
  while (!reaped) {
    const pid_t w = ::wait4(pid, &status, WNOHANG, &usage);
    if (w == pid) {
      reaped = true;
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    const bool timed_out = now >= deadline;
    if (timed_out || interrupt_signal() != 0) {
      kill_group(pid);
      while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
      }
      r.end = timed_out ? ChildResult::End::TimedOut : ChildResult::End::Interrupted;
      reaped = true;
      break;
    }
    // Sleep in poll until output arrives, with a short tick to notice exit, timeout and Ctrl-C
    // (a signal also ends poll early with EINTR).
    int tick_ms = (out_open || err_open) ? 100 : 5;
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      tick_ms = static_cast<int>(std::clamp<std::int64_t>(left.count() + 1, 0, tick_ms));
    }
    struct pollfd fds[2];
    nfds_t nfds = 0;
    if (out_open) fds[nfds++] = {out_r.get(), POLLIN, 0};
    if (err_open) fds[nfds++] = {err_r.get(), POLLIN, 0};
    ::poll(fds, nfds, tick_ms);
    if (out_open) out_open = drain(out_r.get(), r.out, options.max_stdout_bytes, false);
    if (err_open) err_open = drain(err_r.get(), r.err, options.max_stderr_bytes, true);
  }
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // What the child wrote before it ended (descendants holding the pipes are not waited for).
  if (out_open) drain(out_r.get(), r.out, options.max_stdout_bytes, false);
  if (err_open) drain(err_r.get(), r.err, options.max_stderr_bytes, true);
  if (r.err.size() > options.max_stderr_bytes)
    r.err.erase(0, r.err.size() - options.max_stderr_bytes);
  r.peak_rss_bytes = static_cast<std::int64_t>(usage.ru_maxrss) * 1024;
  if (r.end == ChildResult::End::Exited) {
    if (WIFSIGNALED(status)) {
      r.end = ChildResult::End::Signaled;
      r.signal = WTERMSIG(status);
    } else {
      r.exit_code = WEXITSTATUS(status);
    }
  } else {
    r.signal = SIGKILL;
  }
  return r;
}

}  // namespace spattn::experiments
