// Throughput of the exact integer export: values/s of round(x * 10^s) alone (128-bit path at s = 16 and 32,
// GMP path at s = 60) and of whole layers written as .npy in each encoding, layer by layer (one layer of
// activation-like values in memory at a time), with the process's peak resident memory.
//
//   integers_bench [LAYERS] [ROWS] [HIDDEN] [THREADS]     defaults: 8 layers of [512, 1024], all cores
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "export/integers.h"
#include "export/scaled_integers.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

long peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

std::vector<float> activation_like(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> values(static_cast<size_t>(n));
  for (auto& v : values) v = normal(rng);
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace actcap;
  const int64_t layers = argc > 1 ? std::stoll(argv[1]) : 8;
  const int64_t rows = argc > 2 ? std::stoll(argv[2]) : 512;
  const int64_t hidden = argc > 3 ? std::stoll(argv[3]) : 1024;
  const int threads = argc > 4 ? std::stoi(argv[4]) : 0;
  ThreadPool::set_global_threads(threads);
  const int64_t per_layer = rows * hidden;
  std::printf("integers_bench: %lld layers of [%lld, %lld] (%lld values), %d threads\n", (long long)layers,
              (long long)rows, (long long)hidden, (long long)(layers * per_layer), ThreadPool::global().size());

  const std::vector<float> sample = activation_like(per_layer, 1);
  for (int scale : {16, 32, 60}) {
    DecimalScaler scaler(scale);
    ScaledInteger value;
    uint64_t checksum = 0;
    const auto start = std::chrono::steady_clock::now();
    for (float x : sample) {
      scaler.convert(x, value);
      checksum += value.magnitude_bits();
    }
    const double t = seconds_since(start);
    std::printf("convert only, 1 thread, scale %2d: %8.1f M values/s  (checksum %llu)\n", scale,
                double(per_layer) / t / 1e6, (unsigned long long)checksum);
  }

  const auto dir = std::filesystem::temp_directory_path() / ("actcap-integers-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Run {
    IntegerFormat format;
    int scale;
  } runs[] = {{IntegerFormat::Object, 32}, {IntegerFormat::Fixed, 32}, {IntegerFormat::Int64, 16}};
  for (const Run& run : runs) {
    DecimalScaler scaler(run.scale);
    double total = 0;
    uint64_t bytes = 0;
    for (int64_t l = 0; l < layers; ++l) {
      const std::vector<float> values = activation_like(per_layer, uint64_t(l) + 2);  // one layer at a time
      const TensorView view{values.data(), DType::F32, {1, rows, hidden}};
      const std::string name = "layer_" + std::to_string(l);
      const auto start = std::chrono::steady_clock::now();
      write_integer_layer(dir.string(), name, {view}, view.shape, scaler, run.format);
      total += seconds_since(start);
      bytes += std::filesystem::file_size(dir / (name + ".npy"));
      std::filesystem::remove(dir / (name + ".npy"));
    }
    std::printf("export %-6s scale %2d: %8.1f M values/s, %6.1f MB/s written, %.2f bytes/value\n",
                std::string(integer_format_name(run.format)).c_str(), run.scale,
                double(layers * per_layer) / total / 1e6, double(bytes) / total / 1e6,
                double(bytes) / double(layers * per_layer));
  }
  std::filesystem::remove_all(dir);
  std::printf("peak RSS: %ld MiB (one layer's values: %.1f MiB)\n", peak_rss_mib(),
              double(per_layer) * 4 / (1 << 20));
  return 0;
}
