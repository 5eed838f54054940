#include "capture/device_parallel.h"

#include <chrono>
#include <exception>
#include <filesystem>
#include <thread>

#include "capture/capture_job.h"
#include "capture/merge.h"
#include "capture/store_format.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/backend.h"

namespace actcap {

namespace fs = std::filesystem;

namespace {

std::string device_dir(const std::string& out, size_t k) {
  return (fs::path(parts_folder(out)) / fmt::format("device-{}", k)).string();
}

void check_job(const CaptureJob& job) {
  if (job.models.size() != 1) fail("--device {}: capture one --model at a time", job.device);
  if (job.shard) fail("--device {} splits the records among the devices: leave out --shard", job.device);
  if (!job.write_store) fail("--device {}: a capture over several devices writes a store (--out)", job.device);
  if (reads_stdin(job.sources))
    fail("--device {}: every device reads the prompts: give them as a file, not stdin", job.device);
}

}  // namespace

std::vector<std::string> parallel_devices(const std::string& device) {
  std::vector<std::string> devices;
  if (device == "cuda:all") {
    const int gpus = ops::cuda_device_count();
    if (gpus < 1) fail("--device cuda:all: no GPU is visible (no NVIDIA driver, no GPU, or no CUDA backend built)");
    for (int g = 0; g < gpus; ++g) devices.push_back(fmt::format("cuda:{}", g));
    return devices;
  }
  if (device.find(',') == std::string::npos) return devices;
  for (size_t begin = 0;;) {
    const size_t comma = device.find(',', begin);
    devices.push_back(device.substr(begin, comma - begin));
    ops::Device::parse(devices.back());  // each must be a device on its own
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return devices;
}

std::vector<nlohmann::ordered_json> run_capture_on_devices(const CaptureJob& job,
                                                           const std::vector<std::string>& devices,
                                                           CaptureObserver& observer) {
  check_job(job);
  const auto start = std::chrono::steady_clock::now();
  if (already_merged(job.out, job.resume)) {
    observer.stage("", fmt::format("{} is already complete: nothing to resume", job.out));
    return {};
  }
  // One pool for every device's CPU work, set before the threads start (a part must not replace it).
  ThreadPool::set_global_threads(job.threads);
  observer.stage(job.models.front(), fmt::format("capturing on {} devices ({})", devices.size(), job.device));
  const size_t n = devices.size();
  std::vector<nlohmann::ordered_json> summaries(n);
  std::vector<std::exception_ptr> errors(n);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < n; ++k)
    threads.emplace_back([&, k] {
      try {
        CaptureJob part = job;
        part.device = devices[k];
        part.shard = ShardSpec{int64_t(k), int64_t(n)};
        part.out = device_dir(job.out, k);
        part.threads = kKeepThreadPool;
        part.loaded_models.clear();  // a model is not shared between threads: each device loads its own
        CaptureObserver silent;  // the terminal reporter belongs to the calling thread
        summaries[k] = run_capture(part, silent).front();
      } catch (...) {
        errors[k] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (size_t k = 0; k < n; ++k)
    if (errors[k]) {
      try {
        std::rethrow_exception(errors[k]);
      } catch (const std::exception& e) {
        fail("--device {}: {} (--resume keeps what the devices completed)", devices[k], e.what());
      }
    }
  observer.stage(job.models.front(), "merging the devices' parts");
  std::vector<std::string> parts;
  for (size_t k = 0; k < n; ++k) parts.push_back(device_dir(job.out, k));
  const MergeSummary merged = merge_parts(parts, job.out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto summary = merged_capture_summary(summaries, merged, job.out, seconds);
  summary["devices"] = devices;
  write_file_atomic((fs::path(job.out) / store::kSummaryFile).string(), summary.dump(2) + "\n");
  observer.model_finished(summary);
  return {summary};
}

}  // namespace actcap
