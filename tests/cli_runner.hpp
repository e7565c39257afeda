#pragma once
// Runs the spattn CLI binary (SPATTN_CLI_PATH, set by tests/CMakeLists.txt) from a test and
// captures its exit code, stdout and stderr.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "temp_dir.hpp"

namespace spattn::test {

struct CliResult {
  int code = -1;
  std::string out, err;
};

// Runs `spattn ARGS` (ARGS already shell-quoted), with the environment assignments `env`
// ("NAME=value ...", shell-quoted) if given.
inline CliResult run_cli(const std::string& args, const std::string& env = "") {
  const TempDir dir("spattn_cli_stderr");
  const std::string err_path = dir.file("stderr");
  const std::string cmd = (env.empty() ? std::string() : "env " + env + " ") + "'" +
                          SPATTN_CLI_PATH + "' " + args + " 2>'" + err_path + "'";
  CliResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(pipe);
  REQUIRE(WIFEXITED(status));
  r.code = WEXITSTATUS(status);
  std::ifstream err(err_path);
  r.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  return r;
}

}  // namespace spattn::test
