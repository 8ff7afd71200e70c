// Out-of-tree plugins: shared libraries whose methods and tasks register themselves when loaded.
#pragma once
#include <stdexcept>
#include <string>

namespace attnbench {

class PluginError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// dlopen()s the library; its static registrations run on load. Throws PluginError naming the file.
void load_plugin(const std::string& path);

}  // namespace attnbench
