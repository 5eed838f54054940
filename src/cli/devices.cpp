// actcap devices: where actcap can compute here, and why not where it cannot: the CPU's threads, and the CUDA
// GPUs or the reason there are none (no GPU, or a plugin or driver problem, with the loader's message), so
// that a broken CUDA install is told apart from a machine without a GPU.
#include <fmt/format.h>

#include <thread>

#include "cli/command.h"
#include "core/error.h"
#include "ops/backend.h"

namespace actcap {
namespace {

struct DevicesOptions {
  bool require_cuda = false;
};

void list_devices(const DevicesOptions& options) {
  const int gpus = ops::cuda_device_count();
  const std::string reason = gpus > 0 ? "" : ops::cuda_unavailable_reason();
  if (options.require_cuda && gpus == 0) fail("--require-cuda: {}", reason);
  fmt::print("cpu       fp32, {} hardware threads\n", std::thread::hardware_concurrency());
  for (int i = 0; i < gpus; ++i) fmt::print("cuda:{}    fp32, bf16, fp16\n", i);
  if (gpus == 0) fmt::print("cuda      unavailable: {}\n", reason);
}

void setup(CLI::App& command) {
  static DevicesOptions options;
  command.add_flag("--require-cuda", options.require_cuda, "exit non-zero when no CUDA GPU can be used");
  command.callback([] { list_devices(options); });
}

const cli::CommandRegistration registration("devices", "list the CPU and CUDA GPUs actcap can use here", setup);

}  // namespace
}  // namespace actcap
