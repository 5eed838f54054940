// Loads the CUDA backend plugin (libactcap_cuda.so) on first use, so that only GPU runs load the CUDA
// libraries. It is the file $ACTCAP_CUDA_PLUGIN names when set; otherwise the first that loads of: next to the
// running executable, one folder up (build/tests/actcap_tests finds build/libactcap_cuda.so in a build tree
// copied elsewhere), where the build put it.
#include <string>

#include "core/error.h"
#include "ops/backend.h"

#ifdef ACTCAP_HAVE_CUDA
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

namespace actcap::ops {
namespace {

constexpr const char* PLUGIN_NAME = "libactcap_cuda.so";

struct Plugin {
  int (*device_count)() = nullptr;
  const char* (*device_error)() = nullptr;
  Backend* (*make_backend)(const BackendOptions*) = nullptr;
  std::string error;  // why it could not be loaded
};

std::vector<std::string> candidate_paths() {
  if (const char* explicit_path = std::getenv("ACTCAP_CUDA_PLUGIN"); explicit_path && *explicit_path)
    return {explicit_path};  // only that one: a user who names a plugin must not silently get another
  std::vector<std::string> paths;
  std::error_code ignored;
  const std::filesystem::path executable = std::filesystem::read_symlink("/proc/self/exe", ignored);
  if (!executable.empty()) {
    paths.push_back((executable.parent_path() / PLUGIN_NAME).string());
    paths.push_back((executable.parent_path().parent_path() / PLUGIN_NAME).string());
  }
  paths.push_back(ACTCAP_CUDA_PLUGIN_BUILD_PATH);
  return paths;
}

const Plugin& plugin() {
  static Plugin loaded;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string errors;
    auto note = [&errors](const std::string& message) { errors += (errors.empty() ? "" : "; ") + message; };
    const std::vector<std::string> paths = candidate_paths();
    for (const std::string& path : paths) {
      if (!std::filesystem::exists(path)) {
        if (paths.size() == 1) note(path + ": no such file (ACTCAP_CUDA_PLUGIN)");
        continue;
      }
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        note(dlerror());  // e.g. "libcublas.so.13: cannot open shared object file"
        continue;
      }
      loaded.device_count = reinterpret_cast<int (*)()>(dlsym(handle, "actcap_cuda_device_count"));
      loaded.device_error = reinterpret_cast<const char* (*)()>(dlsym(handle, "actcap_cuda_device_error"));
      loaded.make_backend =
          reinterpret_cast<Backend* (*)(const BackendOptions*)>(dlsym(handle, "actcap_cuda_make_backend"));
      if (loaded.device_count && loaded.device_error && loaded.make_backend) return;
      note(path + " lacks the backend's entry points (a plugin of another actcap version?)");
      loaded = Plugin{};
    }
    if (errors.empty()) {
      std::string searched;
      for (const std::string& path : paths) searched += (searched.empty() ? "" : ", ") + path;
      errors = std::string(PLUGIN_NAME) + " was not found (searched " + searched + "; set ACTCAP_CUDA_PLUGIN)";
    }
    loaded.error = "cannot load the CUDA backend: " + errors;
  });
  return loaded;
}

}  // namespace

int cuda_device_count() {
  const Plugin& p = plugin();
  return p.device_count ? p.device_count() : 0;
}

std::string cuda_unavailable_reason() {
  const Plugin& p = plugin();
  if (!p.device_count) return p.error;
  if (p.device_count() > 0) return "";
  const char* driver_error = p.device_error();
  return driver_error ? std::string("the CUDA driver reports: ") + driver_error : "no CUDA GPU on this machine";
}

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  const Plugin& p = plugin();
  if (!p.make_backend) fail("--device {}: {}", options.device.name(), p.error);
  return std::unique_ptr<Backend>(p.make_backend(&options));
}

}  // namespace actcap::ops

#else

namespace actcap::ops {

int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() {
  return "this actcap was built without the CUDA backend (configure it where nvcc is installed)";
}

}  // namespace actcap::ops

#endif
