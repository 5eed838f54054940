// Throughput of the CPU dense-layer kernels (ops/cpu/linear.cpp) on the GEMMs of one Qwen3-0.6B layer
// (q, k, v, o, gate, up, down), for each weight/activation dtype path: GFLOP/s, and the weight bytes streamed per
// second (the decode bound), per wall-clock second and per CPU-second (all threads; steadier on a shared
// machine). Synthetic values; best of RUNS. LAYERS copies of the layer run one after the other: one layer's
// weights (30 MB in bf16) stay in this machine's 32 MB L3 cache, 28 (the model) stream from memory as decode's do.
//
//   gemm_bench [THREADS] [ROWS] [RUNS] [LAYERS]   THREADS 0 = all cores; ROWS 128 = prefill, 1 = decode
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"

namespace {

struct Shape {
  int64_t in, out;
};
const Shape QWEN3_0_6B_LAYER[] = {{1024, 2048}, {1024, 1024}, {1024, 1024}, {2048, 1024},
                                  {1024, 3072}, {1024, 3072}, {3072, 1024}};

struct Path {
  const char* name;
  actcap::DType weights, activations;
  const char* kernels;  // ACTCAP_CPU_KERNELS
};

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

}  // namespace

int main(int argc, char** argv) {
  using actcap::DType;
  try {
    const int threads = argc > 1 ? std::stoi(argv[1]) : 0;
    const int64_t rows = argc > 2 ? std::stoll(argv[2]) : 128;
    const int runs = argc > 3 ? std::stoi(argv[3]) : 5;
    const int layers = argc > 4 ? std::stoi(argv[4]) : 1;
    actcap::ThreadPool::set_global_threads(threads);
    const Path paths[] = {{"fp32, openblas", DType::F32, DType::F32, "portable"},
                          {"fp32, avx512", DType::F32, DType::F32, "auto"},
                          {"bf16 weights, fp32", DType::BF16, DType::F32, "auto"},
                          {"bf16, portable", DType::BF16, DType::BF16, "portable"},
                          {"bf16, avx512-bf16", DType::BF16, DType::BF16, "auto"}};
    for (const Path& path : paths) {
      setenv("ACTCAP_CPU_KERNELS", path.kernels, 1);
      std::vector<std::vector<uint8_t>> weights;
      double flops = 0, weight_bytes = 0;
      for (int copy = 0; copy < layers; ++copy) {
        for (const Shape& s : QWEN3_0_6B_LAYER) {
          std::vector<float> values(size_t(s.in * s.out));
          for (size_t i = 0; i < values.size(); ++i) values[i] = float(int(i * 7919 % 2001) - 1000) * 1e-4f;
          weights.emplace_back(values.size() * actcap::dtype_size(path.weights));
          actcap::convert_from_f32(values.data(), path.weights, weights.back().data(), values.size());
          flops += 2.0 * double(rows * s.in * s.out);
          weight_bytes += double(weights.back().size());
        }
      }
      std::vector<float> x(size_t(rows * 3072), 0.5f), y(size_t(rows * 3072));
      std::vector<uint16_t> x16(x.size(), actcap::f32_to_bf16(0.5f)), y16(y.size());
      double best = 1e30, best_cpu = 1e30;
      for (int run = 0; run <= runs; ++run) {  // run 0 warms up
        const auto start = std::chrono::steady_clock::now();
        const double cpu_start = cpu_seconds();
        for (size_t i = 0; i < weights.size(); ++i) {
          const Shape& s = QWEN3_0_6B_LAYER[i % std::size(QWEN3_0_6B_LAYER)];
          const actcap::ops::Linear layer{weights[i].data(), nullptr, s.in, s.out, false};
          const bool f32 = path.activations == DType::F32;
          actcap::ops::cpu::linear(layer, path.weights, path.activations, f32 ? (const void*)x.data() : x16.data(),
                                   rows, f32 ? (void*)y.data() : y16.data());
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (run > 0) best = std::min(best, seconds), best_cpu = std::min(best_cpu, cpu_seconds() - cpu_start);
      }
      std::printf("%-20s threads=%d rows=%lld layers=%d GFLOP/s=%.1f GFLOP/cpu-s=%.1f weights GB/s=%.1f\n", path.name,
                  actcap::ThreadPool::global().size(), (long long)rows, layers, flops / best * 1e-9,
                  flops / best_cpu * 1e-9, weight_bytes / best * 1e-9);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gemm_bench: %s\n", e.what());
    return 1;
  }
}
