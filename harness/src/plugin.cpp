// Loading of out-of-tree plugin libraries with dlopen.
#include "attnbench/plugin.hpp"

#include <dlfcn.h>

namespace attnbench {

void load_plugin(const std::string& path) {
  // RTLD_GLOBAL is not needed: the plugin resolves the registries against the executable's symbols.
  if (!dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    const char* err = dlerror();
    throw PluginError("cannot load plugin " + path + ": " + (err ? err : "unknown error"));
  }
}

}  // namespace attnbench
