// The environment record: machine, OS, build and library versions, stored with every run.
#include "attnbench/environment.hpp"

#include <H5public.h>
#include <omp.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <boost/version.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>

#include "attnbench/build_info.hpp"
#include "attnbench/device.hpp"
#include "attnbench/git_revision.hpp"
#include "attnbench/measure.hpp"

namespace attnbench {

namespace {
std::string first_match(const std::string& file, const std::string& key) {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) {
      auto p = line.find_first_of(":=", key.size());
      if (p == std::string::npos) continue;
      std::string v = line.substr(p + 1);
      v.erase(0, v.find_first_not_of(" \t\""));
      while (!v.empty() && (v.back() == '"' || v.back() == ' ')) v.pop_back();
      return v;
    }
  return "";
}
std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}
std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}
}  // namespace

json collect_environment(std::uint64_t seed, int threads) {
  json e = json::object();
  utsname u{};
  uname(&u);
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  e["hostname"] = host;
  e["time_utc"] = utc_now();
  e["cpu_model"] = first_match("/proc/cpuinfo", "model name");
  e["cpu_flags_avx512f"] = first_match("/proc/cpuinfo", "flags").find("avx512f") != std::string::npos;
  e["logical_cores"] = static_cast<std::int64_t>(std::thread::hardware_concurrency());
  e["last_level_cache_bytes"] = static_cast<std::int64_t>(last_level_cache_bytes());
  e["memory_bytes"] = static_cast<std::int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  {
    // Load at the start of the run: timings taken on a busy machine are not to be trusted.
    std::ifstream f("/proc/loadavg");
    double l1 = 0, l5 = 0, l15 = 0;
    if (f >> l1 >> l5 >> l15) e["loadavg_1_5_15"] = json::array({l1, l5, l15});
    std::ifstream g("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    std::string gov;
    e["cpu_governor"] = (g >> gov) ? gov : "unavailable";
  }
  e["os"] = first_match("/etc/os-release", "PRETTY_NAME");
  e["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.machine;
  e["compiler"] = build_info::cxx_compiler;
  e["compiler_version_string"] = __VERSION__;
  e["cxx_flags"] = build_info::cxx_flags;
  e["build_type"] = build_info::build_type;
  e["git_revision"] = build_info::git_revision;
  e["attnbench_version"] = build_info::version;
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  e["libraries"] =
      json{{"hdf5", std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel)},
           {"nlohmann_json", std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
                                 std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." +
                                 std::to_string(NLOHMANN_JSON_VERSION_PATCH)},
           {"boost", std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000) + "." +
                         std::to_string(BOOST_VERSION % 100)},
           {"openmp", std::to_string(_OPENMP)}};
  e["omp_max_threads"] = omp_get_max_threads();
  e["threads"] = threads > 0 ? threads : omp_get_max_threads();
  e["omp_proc_bind"] = env_or("OMP_PROC_BIND", "unset");
  e["omp_places"] = env_or("OMP_PLACES", "unset");
  std::string why;
  const int gpus = cuda_device_count(&why);
  e["cuda_devices"] = gpus;
  if (gpus == 0) e["cuda_note"] = why;
  e["seed"] = seed;
  return e;
}

}  // namespace attnbench
