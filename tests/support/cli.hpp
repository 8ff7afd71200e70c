// Runs the attnbench CLI from tests and captures its exit code, stdout and stderr.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace attnbench::test {

struct CliResult {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A fresh scratch directory under the system temp dir, removed by the caller's discretion.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("attnbench-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// `args` is appended to the CLI path as shell words (the tests quote what needs quoting).
inline CliResult run_cli(const std::string& args, const std::filesystem::path& dir) {
  const auto out = dir / "cli.stdout", err = dir / "cli.stderr";
  const std::string cmd = "cd '" + std::string(ATTNBENCH_SOURCE_DIR) + "' && '" + ATTNBENCH_CLI + "' " + args + " >'" +
                          out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

inline std::string source_path(const std::string& rel) { return std::string(ATTNBENCH_SOURCE_DIR) + "/" + rel; }

}  // namespace attnbench::test
