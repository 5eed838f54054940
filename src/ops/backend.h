#pragma once
// The device a model computes on. Models are written once against this interface; ops/cpu/ implements it on
// the host in fp32 or bf16 and ops/cuda/ on an NVIDIA GPU in fp32, bf16 or fp16.
//
// Every pointer a model hands to a backend lives in that backend's memory and holds elements of its dtype(),
// except inverse rotary frequencies (always fp32). A forward pass works on a packed batch: the new rows of
// several sequences concatenated, described by the ForwardBatch last given to begin_batch. Ops are issued in
// order and may run asynchronously (the CUDA backend queues them on one stream); results reach the host only
// through to_host and capture.
//
// Reduced precision follows PyTorch: in bf16/fp16 each HF operation's output is rounded to the dtype, with
// fp32 inside the operation (accumulation, norm statistics, softmax), so activations match HF's within rounding.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "ops/activation.h"

namespace actcap::ops {

struct Device {
  enum class Type { Cpu, Cuda };
  Type type = Type::Cpu;
  int index = 0;
  // "cpu", "cuda" or "cuda:N"; throws actcap::Error otherwise.
  static Device parse(std::string_view text);
  std::string name() const;  // "cpu", "cuda:0"
};

struct BackendOptions {
  Device device;
  DType dtype = DType::F32;      // of weights and activations: F32 or BF16 everywhere; F16 on CUDA
  // CUDA: a sequence's results are the same bits in any batch (its GEMMs run alone; slower). Runs on one GPU
  // repeat bit for bit in either mode.
  bool deterministic = false;
  bool allow_tf32 = false;       // CUDA fp32 GEMMs in TF32 (faster, ~1e-3 relative); off by default
  size_t capture_buffer_bytes = size_t(1) << 30;  // CUDA: pinned host memory for activations in flight
};

// Memory owned by a backend (move-only); released through the backend that allocated it.
class Buffer {
 public:
  Buffer() = default;
  Buffer(void* data, size_t bytes, std::function<void(void*)> release)
      : data_(data), bytes_(bytes), release_(std::move(release)) {}
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  void reset();

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::function<void(void*)> release_;
};

// A dense layer y = x W^T + b. HF's nn.Linear stores W as [out, in]; GPT-2's Conv1D stores it as [in, out].
struct Linear {
  const void* weight = nullptr;
  const void* bias = nullptr;  // may be null
  int64_t in = 0, out = 0;
  bool in_out_layout = false;  // true for Conv1D
};

// One layer of Backend::linears and where its output goes.
struct LinearOutput {
  const Linear* layer = nullptr;
  void* y = nullptr;
};

// One sequence's new rows in a packed batch.
struct BatchSequence {
  int64_t first_row = 0;       // where its rows start in the packed buffers
  int64_t rows = 0;            // tokens it adds in this pass
  int64_t first_position = 0;  // positions already in its KV cache; its rows are at first_position + r
};

struct ForwardBatch {
  std::vector<int32_t> token_ids;  // one per packed row
  std::vector<BatchSequence> sequences;
  int64_t rows() const { return int64_t(token_ids.size()); }
};

// Causal attention; key j is visible from the query at position i when j <= i, and also i - window < j when
// sliding_window > 0. kv_heads divides heads (grouped-query attention).
// A score is computed op for op as HF's eager attention does, rounding to the dtype after each step (visible
// in bf16/fp16 only): rd(q·k), times `scale`, then divided by each of `divisors` that is > 0. Llama & co
// multiply by head_dim^-0.5; GPT-2 divides by sqrt(head_dim) held in the dtype, then by layer + 1; OPT scales
// q before (its scale here is 1).
struct AttentionShape {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 1.0f;
  int64_t sliding_window = 0;
  std::array<float, 2> divisors = {0.0f, 0.0f};
  // Gemma 2's logit soft-capping, after the scaling and before the mask: s = tanh(s / softcap) * softcap, each
  // step rounded to the dtype (0 = off).
  float softcap = 0.0f;
};

// How the rotary op rotates a head (HF's apply_rotary_pos_emb, rotate_half convention): the first rotary_dims
// of each head turn by position * inv_freq (the rest pass through: partial rotary), with cos and sin computed in
// fp32, multiplied by attention_scaling (LongRoPE), then rounded to the dtype.
// LongRoPE switches tables by length, as HF does for each forward call: a sequence whose length after this pass
// (first_position + rows) exceeds long_after rotates this pass's rows with long_inv_freq. Rows rotated in an
// earlier, shorter pass keep their table in the KV cache, as HF's cached keys do.
struct RotaryTable {
  int64_t rotary_dims = 0;              // even, <= head_dim
  const float* inv_freq = nullptr;      // [rotary_dims / 2], fp32 (Backend::f32_constant)
  const float* long_inv_freq = nullptr; // null: one table at every length
  int64_t long_after = 0;
  float attention_scaling = 1.0f;
};

// One sequence's view of a layer's attention: its KV cache, [>= first_position + rows, kv_heads, head_dim],
// already holding this pass's keys (after rotary) and values, and where to write its probabilities when the
// pattern is captured: [rows, heads, first_position + rows], zero for invisible keys (null: not wanted).
struct AttentionSequence {
  const void* keys = nullptr;
  const void* values = nullptr;
  void* pattern = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual DType dtype() const = 0;

  // The backend's copy of a weight (any dtype on the host), converted to dtype(); valid while the backend
  // lives. The CPU backend may return the host data itself when it is already fp32 and `host` outlives it.
  virtual const void* weight(const TensorView& host) = 0;
  // fp32 constants kept as fp32 (inverse rotary frequencies).
  virtual const float* f32_constant(std::span<const float> values) = 0;
  // Uninitialised memory for `elements` elements of dtype().
  virtual Buffer allocate(int64_t elements) = 0;

  // Makes `batch` the one the following ops work on (token ids and positions).
  virtual void begin_batch(const ForwardBatch& batch) = 0;

  // out[r, :] = table[token_ids[r], :]
  virtual void embed(const void* table, int64_t dim, void* out) = 0;
  // out[r, :] = table[position(r) + offset, :]
  virtual void embed_positions(const void* table, int64_t dim, int64_t offset, void* out) = 0;
  // y[rows, out] = x[rows, in] W^T + b
  virtual void linear(const Linear& layer, const void* x, int64_t rows, void* y) = 0;
  // Several layers of one input (q/k/v, gate/up), each output what linear() gives it. The CPU backend runs
  // them as one parallel job: a decode step hands its thread pool a few hundred jobs, and each costs a
  // hand-over and an uneven finish.
  virtual void linears(const void* x, int64_t rows, std::span<const LinearOutput> outputs) {
    for (const LinearOutput& output : outputs) linear(*output.layer, x, rows, output.y);
  }
  // HF LayerNorm over the last dimension (bias may be null); y may alias x.
  virtual void layer_norm(const void* x, int64_t rows, int64_t dim, const void* weight, const void* bias, float eps,
                          void* y) = 0;
  // HF's RMSNorm: weight * (x * rsqrt(mean(x^2) + eps)), statistics in fp32; y may alias x.
  virtual void rms_norm(const void* x, int64_t rows, int64_t dim, const void* weight, float eps, void* y) = 0;
  // Rotates x [batch rows, heads, head_dim] in place at each row's position, as `table` says.
  virtual void rotary(void* x, int64_t heads, int64_t head_dim, const RotaryTable& table) = 0;
  // Every dimension rotated by one table, unscaled (default, linear and llama3 rope).
  void rotary(void* x, int64_t heads, int64_t head_dim, const float* inv_freq) {
    rotary(x, heads, head_dim, RotaryTable{head_dim, inv_freq});
  }
  // q [batch rows, heads, head_dim] -> z [batch rows, heads * head_dim]; one AttentionSequence per batch sequence.
  virtual void attention(const AttentionShape& shape, const void* q, std::span<const AttentionSequence> sequences,
                         void* z) = 0;
  virtual void activate(Activation activation, void* x, int64_t n) = 0;  // in place
  // out = act(gate) * up
  virtual void gated_activate(Activation activation, const void* gate, const void* up, void* out, int64_t n) = 0;
  // out = a + b (out may alias a or b)
  virtual void add(const void* a, const void* b, void* out, int64_t n) = 0;
  // x = x * factor, in place (a tensor times a Python float in PyTorch: fp32 product, rounded to the dtype)
  virtual void scale(void* x, float factor, int64_t n) = 0;
  // Copies `rows` rows of `width` elements between strided buffers (pitches in elements).
  virtual void copy_rows(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch, int64_t width,
                         int64_t rows) = 0;

  // Writes `elements` host fp32 values into `dst` (backend memory), converted to dtype(), in queue order;
  // `host` need not outlive the call (interventions upload vectors and patched rows with it).
  virtual void upload(const float* host, int64_t elements, void* dst) = 0;

  // Waits for the queued work and returns `elements` values from `src` as fp32 on the host.
  virtual std::vector<float> to_host(const void* src, int64_t elements) = 0;
  // Delivers `elements` values of `src` (as of this point in the queue) to `deliver` as fp32 on the host, later
  // and possibly on another thread; deliveries run one at a time, in the order they were asked for. The CPU
  // backend delivers at once. `src` may be overwritten by later ops right after the call.
  virtual void capture(const void* src, int64_t elements, std::function<void(const float* host)> deliver) = 0;
  // Waits until every queued op and delivery is done; rethrows a delivery's exception.
  virtual void synchronize() = 0;

  // OLMo 2's RMSNorm: (weight * (x * rsqrt(mean(x^2) + eps))) in fp32, rounded to the dtype once, where
  // rms_norm rounds the normalised value before the weight multiplies it (the same in fp32); y may alias x.
  virtual void rms_norm_fp32_weight(const void* x, int64_t rows, int64_t dim, const void* weight, float eps,
                                    void* y) = 0;
  // rotary with cos/sin and the products kept in fp32 and each result rounded to the dtype once (OLMo 2 in
  // transformers 5 rotates in fp32 and casts q/k back), where rotary rounds cos, sin and every product (the same
  // in fp32).
  virtual void rotary_fp32_tables(void* x, int64_t heads, int64_t head_dim, const float* inv_freq) = 0;
  // x = min(max(x, -limit), limit), in place; NaN stays NaN (torch.clamp_, OLMo's clip_qkv).
  virtual void clamp(void* x, float limit, int64_t n) = 0;
  // Gemma's RMSNorm: (x * rsqrt(mean(x^2) + eps)) * (1 + weight), all in fp32, rounded to the dtype once at the
  // end (Llama's rounds before the weight multiplies); y may alias x.
  virtual void gemma_rms_norm(const void* x, int64_t rows, int64_t dim, const void* weight, float eps, void* y) = 0;
  // x = tanh(x / cap) * cap in place, each step rounded to the dtype (Gemma 2's final logit soft-capping).
  virtual void softcap(void* x, float cap, int64_t n) = 0;
  // Mixture-of-experts dispatch: the router's choices are read to the host, so the row lists (and weights) come
  // from the host; neither span need outlive the call.
  // dst[i, :] = src[rows[i], :] for each i: the rows routed to one expert, packed [rows.size(), width].
  virtual void gather_rows(const void* src, int64_t width, std::span<const int32_t> rows, void* dst) = 0;
  // dst[rows[i], :] += src[i, :] * weights[i] for each i (rows distinct): one expert's weighted output added into
  // the block output, as HF's index_add_ of expert_out * w; in bf16/fp16 the product and the sum are each
  // rounded to the dtype, and weights[i] is used as given (callers round it where HF does).
  virtual void scatter_add_rows(const void* src, int64_t width, std::span<const int32_t> rows,
                                std::span<const float> weights, void* dst) = 0;
};

// A backend for `options` (an actcap::Error when the device is unavailable or the build has no CUDA).
std::unique_ptr<Backend> make_backend(const BackendOptions& options);
std::unique_ptr<Backend> make_cpu_backend(DType dtype = DType::F32);  // F32 or BF16
#ifdef ACTCAP_HAVE_CUDA
// Through the CUDA plugin (ops/cuda_plugin.cpp), loaded on first use.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);
#endif
int cuda_device_count();  // 0 when there is no GPU, no driver, no loadable plugin or no CUDA build
// Why no GPU can be used, in one line (empty when cuda_device_count() > 0): built without CUDA, the plugin
// could not be loaded (and the loader's message), the driver's error, or no GPU. "No GPU" and "a broken
// install" must not look the same: GPU tests that skip say this.
std::string cuda_unavailable_reason();

}  // namespace actcap::ops
