#pragma once
// Launchers for the CUDA backend's kernels, all queued on `stream`. Element pointers hold `dtype` (F32, BF16 or
// F16) values; arithmetic is fp32 inside each operation and, in 16-bit dtypes, rounds where PyTorch rounds
// (see ops/backend.h), so results match both the CPU backend (fp32) and HF (bf16/fp16).
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "ops/activation.h"

namespace actcap::ops::cuda {

// The packed batch as the kernels see it: per row, its token id and position.
struct DeviceBatch {
  const int32_t* token_ids = nullptr;
  const int32_t* positions = nullptr;
  int64_t rows = 0;
};

void launch_embed(DType dtype, const void* table, int64_t dim, const DeviceBatch& batch, void* out,
                  cudaStream_t stream);
// out[r] = table[position(r) + offset]
void launch_embed_positions(DType dtype, const void* table, int64_t dim, int64_t offset, const DeviceBatch& batch,
                            void* out, cudaStream_t stream);
// y[r, :] = bias for every row (the GEMM then adds x W^T with beta = 1: one rounding, as addmm).
void launch_broadcast_rows(DType dtype, const void* bias, int64_t rows, int64_t width, void* y,
                           cudaStream_t stream);
void launch_layer_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const void* weight, const void* bias,
                       float eps, void* y, cudaStream_t stream);
void launch_rms_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const void* weight, float eps, void* y,
                     cudaStream_t stream);
// Rotates the first rotary_dims of each head of x [batch rows, heads, head_dim] (ops/backend.h RotaryTable).
void launch_rotary(DType dtype, void* x, int64_t heads, int64_t head_dim, int64_t rotary_dims,
                   const float* inv_freq, float attention_scaling, const DeviceBatch& batch, cudaStream_t stream);
void launch_activate(DType dtype, Activation activation, void* x, int64_t n, cudaStream_t stream);
void launch_gated_activate(DType dtype, Activation activation, const void* gate, const void* up, void* out, int64_t n,
                           cudaStream_t stream);
void launch_add(DType dtype, const void* a, const void* b, void* out, int64_t n, cudaStream_t stream);
void launch_scale(DType dtype, void* x, float factor, int64_t n, cudaStream_t stream);
// Gemma's RMSNorm (ops/backend.h): the (1 + weight) multiply in fp32, one rounding at the end.
void launch_gemma_rms_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const void* weight, float eps,
                           void* y, cudaStream_t stream);
// x = tanh(x / cap) * cap in place.
void launch_softcap(DType dtype, void* x, float cap, int64_t n, cudaStream_t stream);
// dst[i] = float(src[i]): the capture snapshot of a 16-bit activation.
void launch_to_f32(DType dtype, const void* src, float* dst, int64_t n, cudaStream_t stream);

// rms_norm and rotary with fp32 products and one rounding per output (ops/backend.h rms_norm_fp32_weight,
// rotary_fp32_tables; kernels_single_rounding.cu).
void launch_rms_norm_fp32_weight(DType dtype, const void* x, int64_t rows, int64_t dim, const void* weight, float eps,
                                 void* y, cudaStream_t stream);
void launch_rotary_fp32_tables(DType dtype, void* x, int64_t heads, int64_t head_dim, const float* inv_freq,
                               const DeviceBatch& batch, cudaStream_t stream);

// x = min(max(x, -limit), limit) in place, NaN kept (kernels_clamp.cu).
void launch_clamp(DType dtype, void* x, float limit, int64_t n, cudaStream_t stream);

// One sequence of a packed attention call (device side).
struct AttentionTask {
  int64_t first_row = 0, rows = 0, first_position = 0;
  const void* keys = nullptr;
  const void* values = nullptr;
  void* pattern = nullptr;
};

// How a score is made from q·k (ops/backend.h AttentionShape): rd(rd(q·k) * scale), then rd(s / divisor) for
// each divisor > 0, then rd(rd(tanh(rd(s / softcap))) * softcap) when softcap > 0.
struct ScoreSteps {
  float scale = 1.0f;
  float divisors[2] = {0.0f, 0.0f};
  float softcap = 0.0f;
};

struct AttentionParams {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  ScoreSteps score;
  int64_t sliding_window = 0;
};

// Largest head_dim the attention kernel supports.
constexpr int64_t MAX_ATTENTION_HEAD_DIM = 256;

// q [rows, heads, head_dim], z [rows, heads * head_dim]; `tasks` (device, `count` of them) describe the sequences;
// max_rows bounds their rows. Patterns must already be zeroed: only visible keys are written.
void launch_attention(DType dtype, const AttentionParams& params, const void* q, const AttentionTask* tasks,
                      int64_t count, int64_t max_rows, void* z, cudaStream_t stream);

// Mixture-of-experts rows (expert_rows.cu); `rows` and `weights` are device arrays of `count` entries.
// dst[i] = src[rows[i]]
void launch_gather_rows(DType dtype, const void* src, int64_t width, const int32_t* rows, int64_t count, void* dst,
                        cudaStream_t stream);
// dst[rows[i]] = rd(dst[rows[i]] + rd(src[i] * weights[i])), rows distinct
void launch_scatter_add_rows(DType dtype, const void* src, int64_t width, const int32_t* rows, const float* weights,
                             int64_t count, void* dst, cudaStream_t stream);

}  // namespace actcap::ops::cuda
