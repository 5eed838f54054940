// Loads the CUDA backend plugin (libactcap_cuda.so) on first use, so that only GPU runs load the CUDA
// libraries. It is looked for next to the running executable, then where the build put it.
#ifdef ACTCAP_HAVE_CUDA
#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <string>

#include "core/error.h"
#include "ops/backend.h"

namespace actcap::ops {
namespace {

constexpr const char* PLUGIN_NAME = "libactcap_cuda.so";

struct Plugin {
  int (*device_count)() = nullptr;
  Backend* (*make_backend)(const BackendOptions*) = nullptr;
  std::string error;  // why it could not be loaded
};

const Plugin& plugin() {
  static Plugin loaded;
  static std::once_flag once;
  std::call_once(once, [] {
    std::error_code ignored;
    const std::filesystem::path executable = std::filesystem::read_symlink("/proc/self/exe", ignored);
    std::string errors;
    for (const std::string& path : {(executable.parent_path() / PLUGIN_NAME).string(),
                                    std::string(ACTCAP_CUDA_PLUGIN_BUILD_PATH)}) {
      if (!std::filesystem::exists(path)) continue;
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        errors += std::string(errors.empty() ? "" : "; ") + dlerror();
        continue;
      }
      loaded.device_count = reinterpret_cast<int (*)()>(dlsym(handle, "actcap_cuda_device_count"));
      loaded.make_backend =
          reinterpret_cast<Backend* (*)(const BackendOptions*)>(dlsym(handle, "actcap_cuda_make_backend"));
      if (loaded.device_count && loaded.make_backend) return;
      errors += std::string(errors.empty() ? "" : "; ") + path + " lacks the backend's entry points";
      loaded.device_count = nullptr;
      loaded.make_backend = nullptr;
    }
    loaded.error = errors.empty() ? std::string(PLUGIN_NAME) + " was not found next to the executable nor at " +
                                        ACTCAP_CUDA_PLUGIN_BUILD_PATH
                                  : errors;
  });
  return loaded;
}

}  // namespace

int cuda_device_count() {
  const Plugin& p = plugin();
  return p.device_count ? p.device_count() : 0;
}

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  const Plugin& p = plugin();
  if (!p.make_backend) fail("--device {}: cannot load the CUDA backend: {}", options.device.name(), p.error);
  return std::unique_ptr<Backend>(p.make_backend(&options));
}

}  // namespace actcap::ops
#endif
