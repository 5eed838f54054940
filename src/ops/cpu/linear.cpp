// Dense layers on OpenBLAS. The output is cut into fixed tiles (TILE_ROWS x TILE_COLS) that depend only on the
// matrix sizes; each tile is one single-threaded sgemm call on a pool thread. A tile's arithmetic is therefore
// the same whatever the thread count, which keeps results bit-reproducible.
#include <cblas.h>

#include <algorithm>
#include <mutex>

#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"

namespace actcap::ops::cpu {
namespace {

constexpr int64_t TILE_ROWS = 64;
constexpr int64_t TILE_COLS = 128;

void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

}  // namespace

void linear(const Linear& layer, const float* x, int64_t rows, float* y) {
  single_threaded_blas();
  const int64_t K = layer.in, N = layer.out;
  const float* weight = static_cast<const float*>(layer.weight);
  const float* bias = static_cast<const float*>(layer.bias);
  const int64_t row_tiles = (rows + TILE_ROWS - 1) / TILE_ROWS;
  const int64_t col_tiles = (N + TILE_COLS - 1) / TILE_COLS;
  ThreadPool::global().parallel_for(0, row_tiles * col_tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t m0 = (t / col_tiles) * TILE_ROWS, n0 = (t % col_tiles) * TILE_COLS;
      const int64_t m = std::min(TILE_ROWS, rows - m0), n = std::min(TILE_COLS, N - n0);
      float* out = y + m0 * N + n0;
      if (layer.in_out_layout) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(n), int(K), 1.0f, x + m0 * K, int(K),
                    weight + n0, int(N), 0.0f, out, int(N));
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(K), 1.0f, x + m0 * K, int(K),
                    weight + n0 * K, int(K), 0.0f, out, int(N));
      }
      if (bias) {
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) out[i * N + j] += bias[n0 + j];
      }
    }
  });
}

}  // namespace actcap::ops::cpu
