// The machine's limits that bound the CPU engine: OpenBLAS sgemm GFLOP/s (a large square product and the
// products of real model shapes, as the engine calls them: x[M, K] times W[N, K] transposed), the peak of
// register-resident fp32 FMA and AVX512-BF16 dot-product loops (run-time dispatched: a CPU or build without
// them prints "not available"), and memory read bandwidth, each on 1 and 2 threads. One `key value...` line per
// measurement, for bench/roofline.sh to read. Read bandwidth is measured with scalar loads and, where the CPU
// has AVX-512, with 64-byte vector loads (the way the decode kernels read weights; faster on AMD Zen 4), so the
// readers' bound is the higher of the two.
//
//   roofline_bench [BANDWIDTH_MIB] [bandwidth]   (default 1024 MiB: a buffer far larger than the caches;
//                                                  "bandwidth": only the read bandwidth, in about a second)
#include <cblas.h>
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values, which -Wuninitialized reports at every
// use (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreadCounts[] = {1, 2};
constexpr double kMinSeconds = 0.4;  // each figure is the best of repeated runs of at least this long

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs fn(thread_index) on `threads` threads at once; returns the wall time.
double run_on_threads(int threads, const std::function<void(int)>& fn) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(fn, t);
  fn(0);
  for (auto& worker : workers) worker.join();
  return seconds_since(start);
}

struct GemmShape {
  const char* what;
  int m, n, k;
  bool transposed_b;  // the engine's layout: weights [N, K]
};

constexpr GemmShape kGemmShapes[] = {
    {"square", 2048, 2048, 2048, false},
    {"qwen3-0.6b.gate_up", 128, 3072, 1024, true},
    {"qwen3-0.6b.down", 128, 1024, 3072, true},
    {"llama-3.1-8b.gate_up", 128, 14336, 4096, true},
    {"llama-3.1-8b.down", 128, 4096, 14336, true},
};

double sgemm_gflops(const GemmShape& s, int threads) {
  openblas_set_num_threads(threads);
  std::vector<float> a(size_t(s.m) * s.k, 0.5f), b(size_t(s.k) * s.n, 0.25f), c(size_t(s.m) * s.n);
  const double flops = 2.0 * s.m * s.n * s.k;
  double best = 0, total = 0;
  for (int rep = 0; rep < 3 || total < kMinSeconds; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, s.transposed_b ? CblasTrans : CblasNoTrans, s.m, s.n, s.k, 1.0f,
                a.data(), s.k, b.data(), s.transposed_b ? s.k : s.n, 0.0f, c.data(), s.n);
    const double taken = seconds_since(start);
    if (rep > 0) best = std::max(best, flops / taken * 1e-9);  // rep 0 warms up
    total += taken;
  }
  return best;
}

// 16 independent accumulator chains cover the instruction latency times its throughput on current cores.
constexpr int kChains = 16;
constexpr int64_t kLoopIterations = 1 << 24;

__attribute__((target("avx512f"))) float fp32_fma_loop() {
  __m512 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(float(j));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
  for (int64_t i = 0; i < kLoopIterations; ++i)
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  __m512 sum = acc[0];
  for (int j = 1; j < kChains; ++j) sum = _mm512_add_ps(sum, acc[j]);
  return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx512f,avx512bf16"))) float bf16_dot_loop() {
  __m512 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(float(j));
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(-1e-3f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.5f));
  for (int64_t i = 0; i < kLoopIterations; ++i)
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
  __m512 sum = acc[0];
  for (int j = 1; j < kChains; ++j) sum = _mm512_add_ps(sum, acc[j]);
  return _mm512_reduce_add_ps(sum);
}

// GFLOP/s of `loop` (flops_per_step per accumulator step: one zmm instruction) on `threads` threads.
double register_loop_gflops(float (*loop)(), double flops_per_step, int threads) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<float> sink(threads);
    const double taken = run_on_threads(threads, [&](int t) { sink[t] = loop(); });
    if (sink[0] == -1.0f) std::puts("");  // keeps the results alive
    best = std::max(best, threads * flops_per_step * kChains * double(kLoopIterations) / taken * 1e-9);
  }
  return best;
}

uint64_t sum_scalar(const uint64_t* p, size_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i < n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

__attribute__((target("avx512f"))) uint64_t sum_avx512(const uint64_t* p, size_t n) {
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i + 32 <= n; i += 32) {  // four cache lines a step
    s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(p + i));
    s1 = _mm512_add_epi64(s1, _mm512_loadu_si512(p + i + 8));
    s2 = _mm512_add_epi64(s2, _mm512_loadu_si512(p + i + 16));
    s3 = _mm512_add_epi64(s3, _mm512_loadu_si512(p + i + 24));
  }
  return _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
}

double read_bandwidth_gbps(const std::vector<uint64_t>& buffer, int threads, uint64_t (*sum)(const uint64_t*, size_t)) {
  const size_t share = buffer.size() / threads / 32 * 32;
  double best = 0;
  for (int rep = 0; rep < 4; ++rep) {
    std::vector<uint64_t> sink(threads);
    const double taken = run_on_threads(threads, [&](int t) { sink[t] = sum(buffer.data() + t * share, share); });
    if (sink[0] == 42) std::puts("");  // keeps the sums alive
    if (rep > 0) best = std::max(best, double(share * threads * sizeof(uint64_t)) / taken * 1e-9);
  }
  return best;
}

void print_read_bandwidth(size_t mib) {
  std::vector<uint64_t> buffer(mib * (1 << 20) / sizeof(uint64_t));
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = i;  // touches every page before timing
  const bool have_avx512 = __builtin_cpu_supports("avx512f");
  for (int threads : kThreadCounts) {
    std::printf("read_bandwidth threads=%d mib=%zu loads=scalar gbps=%.1f\n", threads, mib,
                read_bandwidth_gbps(buffer, threads, sum_scalar));
    if (have_avx512)
      std::printf("read_bandwidth threads=%d mib=%zu loads=avx512 gbps=%.1f\n", threads, mib,
                  read_bandwidth_gbps(buffer, threads, sum_avx512));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const size_t bandwidth_mib = argc > 1 ? std::stoul(argv[1]) : 1024;
  if (argc > 2 && std::string(argv[2]) == "bandwidth") {
    print_read_bandwidth(bandwidth_mib);
    return 0;
  }
  for (int threads : kThreadCounts)
    for (const GemmShape& s : kGemmShapes)
      std::printf("sgemm %s %dx%dx%d threads=%d gflops=%.1f\n", s.what, s.m, s.n, s.k, threads,
                  sgemm_gflops(s, threads));
  const bool have_avx512 = __builtin_cpu_supports("avx512f");
  const bool have_bf16 = have_avx512 && __builtin_cpu_supports("avx512bf16");
  for (int threads : kThreadCounts) {
    // One zmm FMA: 16 lanes x (multiply + add). One vdpbf16ps: 16 lanes x 2 products, each multiply + add.
    if (have_avx512)
      std::printf("fp32_fma_peak threads=%d gflops=%.1f\n", threads, register_loop_gflops(fp32_fma_loop, 32, threads));
    else
      std::printf("fp32_fma_peak threads=%d not available (no AVX-512)\n", threads);
    if (have_bf16)
      std::printf("bf16_dot_peak threads=%d gflops=%.1f\n", threads, register_loop_gflops(bf16_dot_loop, 64, threads));
    else
      std::printf("bf16_dot_peak threads=%d not available (no AVX512-BF16)\n", threads);
  }
  print_read_bandwidth(bandwidth_mib);
  return 0;
}
