// Causal attention over a packed batch in one launch: block (query tile, head, sequence). Scores never reach
// global memory; a block streams its keys through shared memory twice:
//   pass 1: each query row's softmax maximum and denominator (online, in fp32);
//   pass 2: the probabilities, rounded to the dtype as HF's eager softmax(...).to(dtype) does, written to the
//           pattern when it is captured, and their weighted sum of the values.
// The second pass is what lets a 16-bit run round each probability before it multiplies a value (an online
// rescaling could not). Scores are recomputed by the same code in both passes, with explicitly rounded
// operations, so both see the same bits. Every output is accumulated by one thread in key order: deterministic.
#include <algorithm>
#include <string>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/kernels.h"
#include "ops/cuda/numeric.cuh"

namespace actcap::ops::cuda {
namespace {

constexpr int QUERY_TILE = 32;  // query rows per block
constexpr int KEY_TILE = 32;    // keys per shared-memory tile: one per lane
constexpr int THREADS = 128;
constexpr int WARPS = THREADS / 32;
constexpr int ROWS_PER_WARP = QUERY_TILE / WARPS;  // warp w owns rows w, w + WARPS, ...

size_t shared_bytes(int64_t head_dim) {
  const int64_t floats = QUERY_TILE * head_dim                // queries
                         + KEY_TILE * (head_dim + 1)          // keys, padded against bank conflicts
                         + KEY_TILE * head_dim                // values
                         + QUERY_TILE * (KEY_TILE + 1);       // probabilities
  return size_t(floats) * sizeof(float);
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// The scores of the warp's query rows (warp + WARPS * r) against one key, as HF eager rounds them: (q @ k^T)
// rounded to the dtype, then * scale rounded, then / each divisor rounded, then soft-capped (each step rounded).
// The key's values are loaded once for all rows; each dot product is accumulated in key-dimension order whichever
// pass calls this, so both passes see the same bits. Rows at or past `active` (beyond the sequence) are skipped:
// their scores are never used.
template <typename T>
__device__ __forceinline__ void row_scores(const float* qs, const float* key, int warp, int active, int head_dim,
                                           const ScoreSteps& steps, float (&scores)[ROWS_PER_WARP]) {
  float dot[ROWS_PER_WARP];
#pragma unroll
  for (int r = 0; r < ROWS_PER_WARP; ++r) dot[r] = 0.0f;
  for (int d = 0; d < head_dim; ++d) {
    const float k = key[d];
#pragma unroll
    for (int r = 0; r < ROWS_PER_WARP; ++r)
      if (warp + WARPS * r < active) dot[r] = __fmaf_rn(qs[(warp + WARPS * r) * head_dim + d], k, dot[r]);
  }
#pragma unroll
  for (int r = 0; r < ROWS_PER_WARP; ++r) {
    float s = rd<T>(__fmul_rn(rd<T>(dot[r]), steps.scale));
    if (steps.divisors[0] > 0.0f) s = rd<T>(__fdiv_rn(s, steps.divisors[0]));
    if (steps.divisors[1] > 0.0f) s = rd<T>(__fdiv_rn(s, steps.divisors[1]));
    if (steps.softcap > 0.0f) s = rd<T>(__fmul_rn(rd<T>(tanhf(rd<T>(__fdiv_rn(s, steps.softcap)))), steps.softcap));
    scores[r] = s;
  }
}

// ACC = QUERY_TILE * MAX_HEAD_DIM / THREADS output elements per thread.
template <typename T, int MAX_HEAD_DIM>
__global__ void __launch_bounds__(THREADS)
    attention_kernel(const AttentionTask* tasks, const T* q, T* z, int heads, int kv_heads, int head_dim,
                     ScoreSteps steps, int64_t window) {
  constexpr int ACC = QUERY_TILE * MAX_HEAD_DIM / THREADS;
  const AttentionTask task = tasks[blockIdx.z];
  const int64_t tile = int64_t(blockIdx.x) * QUERY_TILE;
  if (tile >= task.rows) return;  // a shorter sequence than the grid's longest
  const int h = blockIdx.y, g = h / (heads / kv_heads);
  const int active = int(min(int64_t(QUERY_TILE), task.rows - tile));
  const int64_t first_query = task.first_position + tile;  // position of the tile's row 0
  const int64_t key_begin = window > 0 ? max(int64_t(0), first_query - window + 1) : 0;
  const int64_t key_end = first_query + active;  // exclusive: the last row sees keys up to its own position
  const int64_t width = task.first_position + task.rows;  // of a pattern row
  const T* keys = static_cast<const T*>(task.keys);
  const T* values = static_cast<const T*>(task.values);
  T* pattern = static_cast<T*>(task.pattern);

  extern __shared__ float shared[];
  float* qs = shared;                               // [QUERY_TILE][head_dim]
  float* ks = qs + QUERY_TILE * head_dim;           // [KEY_TILE][head_dim + 1]
  float* vs = ks + KEY_TILE * (head_dim + 1);       // [KEY_TILE][head_dim]
  float* ps = vs + KEY_TILE * head_dim;             // [QUERY_TILE][KEY_TILE + 1]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  for (int e = threadIdx.x; e < QUERY_TILE * head_dim; e += THREADS) {
    const int row = e / head_dim, d = e % head_dim;
    qs[e] = row < active ? to_f(q[((task.first_row + tile + row) * heads + h) * int64_t(head_dim) + d]) : 0.0f;
  }

  // Loads keys [key0, key0 + KEY_TILE) (and their values) into shared memory; zeros past key_end.
  auto load_tile = [&](int64_t key0, bool with_values) {
    __syncthreads();  // the previous tile is no longer read
    for (int e = threadIdx.x; e < KEY_TILE * head_dim; e += THREADS) {
      const int j = e / head_dim, d = e % head_dim;
      const int64_t key = key0 + j;
      const int64_t at = (key * kv_heads + g) * int64_t(head_dim) + d;
      ks[j * (head_dim + 1) + d] = key < key_end ? to_f(keys[at]) : 0.0f;
      if (with_values) vs[e] = key < key_end ? to_f(values[at]) : 0.0f;
    }
    __syncthreads();
  };
  auto visible = [&](int row, int64_t key) {
    const int64_t position = first_query + row;
    return row < active && key <= position && (window <= 0 || key > position - window);
  };

  // Pass 1: per owned row, the running maximum and the denominator relative to it.
  float maximum[ROWS_PER_WARP], denominator[ROWS_PER_WARP];
#pragma unroll
  for (int k = 0; k < ROWS_PER_WARP; ++k) {
    maximum[k] = -INFINITY;
    denominator[k] = 0.0f;
  }
  for (int64_t key0 = key_begin; key0 < key_end; key0 += KEY_TILE) {
    load_tile(key0, false);
    const int64_t key = key0 + lane;
    float scores[ROWS_PER_WARP];
    row_scores<T>(qs, ks + lane * (head_dim + 1), warp, active, head_dim, steps, scores);
#pragma unroll
    for (int k = 0; k < ROWS_PER_WARP; ++k) {
      const bool seen = visible(warp + WARPS * k, key);
      const float s = seen ? scores[k] : -INFINITY;
      const float tile_max = warp_max(s);
      if (tile_max == -INFINITY) continue;  // uniform across the warp
      const float next = fmaxf(maximum[k], tile_max);
      const float part = warp_sum(seen ? expf(__fsub_rn(s, next)) : 0.0f);
      denominator[k] = __fadd_rn(__fmul_rn(denominator[k], expf(__fsub_rn(maximum[k], next))), part);
      maximum[k] = next;
    }
  }
  float inverse[ROWS_PER_WARP];
#pragma unroll
  for (int k = 0; k < ROWS_PER_WARP; ++k) inverse[k] = denominator[k] > 0.0f ? __fdiv_rn(1.0f, denominator[k]) : 0.0f;

  // Pass 2: probabilities and the weighted sum of values. Thread element e = threadIdx.x + THREADS * a is
  // output (row e / head_dim, dim e % head_dim).
  float acc[ACC];
#pragma unroll
  for (int a = 0; a < ACC; ++a) acc[a] = 0.0f;
  for (int64_t key0 = key_begin; key0 < key_end; key0 += KEY_TILE) {
    load_tile(key0, true);
    const int64_t key = key0 + lane;
    float scores[ROWS_PER_WARP];
    row_scores<T>(qs, ks + lane * (head_dim + 1), warp, active, head_dim, steps, scores);
#pragma unroll
    for (int k = 0; k < ROWS_PER_WARP; ++k) {
      const int row = warp + WARPS * k;
      float p = 0.0f;
      if (visible(row, key)) {
        p = rd<T>(__fmul_rn(expf(__fsub_rn(scores[k], maximum[k])), inverse[k]));
        if (pattern) pattern[((tile + row) * heads + h) * width + key] = from_f<T>(p);
      }
      ps[row * (KEY_TILE + 1) + lane] = p;
    }
    __syncthreads();
    if (THREADS % head_dim == 0) {
      // Every element of this thread has the same dimension (e % head_dim == threadIdx.x % head_dim): one
      // value load serves all its rows.
      const int d = threadIdx.x % head_dim, row0 = threadIdx.x / head_dim, stride = THREADS / head_dim;
      for (int j = 0; j < KEY_TILE; ++j) {
        const float v = vs[j * head_dim + d];
#pragma unroll
        for (int a = 0; a < ACC; ++a)
          if (row0 + stride * a < active)  // implies threadIdx.x + THREADS * a < QUERY_TILE * head_dim
            acc[a] = __fmaf_rn(ps[(row0 + stride * a) * (KEY_TILE + 1) + j], v, acc[a]);
      }
    } else {
#pragma unroll
      for (int a = 0; a < ACC; ++a) {
        const int e = threadIdx.x + THREADS * a;
        if (e < QUERY_TILE * head_dim && e / head_dim < active) {
          const int row = e / head_dim, d = e % head_dim;
          const float* prow = ps + row * (KEY_TILE + 1);
          float sum = acc[a];
          for (int j = 0; j < KEY_TILE; ++j) sum = __fmaf_rn(prow[j], vs[j * head_dim + d], sum);
          acc[a] = sum;
        }
      }
    }
  }

#pragma unroll
  for (int a = 0; a < ACC; ++a) {
    const int e = threadIdx.x + THREADS * a;
    if (e < QUERY_TILE * head_dim) {
      const int row = e / head_dim, d = e % head_dim;
      if (row < active) z[((task.first_row + tile + row) * heads + h) * int64_t(head_dim) + d] = from_f<T>(acc[a]);
    }
  }
}

template <typename T, int MAX_HEAD_DIM>
void launch(const AttentionParams& p, const void* q, const AttentionTask* tasks, int64_t count, int64_t max_rows,
            void* z, cudaStream_t stream) {
  const size_t bytes = shared_bytes(p.head_dim);
  auto kernel = attention_kernel<T, MAX_HEAD_DIM>;
  if (bytes > 48 * 1024)
    ACTCAP_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  const int64_t tiles = (max_rows + QUERY_TILE - 1) / QUERY_TILE;
  constexpr int64_t MAX_GRID_Z = 65535;
  for (int64_t first = 0; first < count; first += MAX_GRID_Z) {
    const dim3 grid(unsigned(tiles), unsigned(p.heads), unsigned(std::min(MAX_GRID_Z, count - first)));
    kernel<<<grid, THREADS, bytes, stream>>>(tasks + first, static_cast<const T*>(q), static_cast<T*>(z),
                                             int(p.heads), int(p.kv_heads), int(p.head_dim), p.score,
                                             p.sliding_window);
    ACTCAP_CUDA_LAUNCHED("attention");
  }
}

}  // namespace

void launch_attention(DType dtype, const AttentionParams& params, const void* q, const AttentionTask* tasks,
                      int64_t count, int64_t max_rows, void* z, cudaStream_t stream) {
  if (count == 0 || max_rows == 0) return;
  if (params.head_dim < 1 || params.head_dim > MAX_ATTENTION_HEAD_DIM)
    internal_error("attention head_dim " + std::to_string(params.head_dim) + " is outside 1.." +
                   std::to_string(MAX_ATTENTION_HEAD_DIM));
  if (params.kv_heads < 1 || params.heads % params.kv_heads != 0 || params.heads > 65535)
    internal_error("attention with " + std::to_string(params.heads) + " heads and " +
                   std::to_string(params.kv_heads) + " key/value heads");
  if ((max_rows + QUERY_TILE - 1) / QUERY_TILE > int64_t(0x7fffffff))
    internal_error("attention over " + std::to_string(max_rows) + " rows");
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (params.head_dim <= 64)
      launch<T, 64>(params, q, tasks, count, max_rows, z, stream);
    else if (params.head_dim <= 128)
      launch<T, 128>(params, q, tasks, count, max_rows, z, stream);
    else
      launch<T, 256>(params, q, tasks, count, max_rows, z, stream);
  });
}

}  // namespace actcap::ops::cuda
