// The CUDA backend: one compute stream per backend on which every op is queued in order; batch metadata goes
// up through pinned staging without host synchronisation; activations come back through to_host (synchronous)
// or the capture pipeline (overlapped). The backend's methods are called from one thread.
//
// Determinism: every kernel computes each output from its own inputs in a fixed order (no atomics), and
// cuBLAS runs on a fixed workspace without atomics, so a run repeats bit for bit on the same GPU.
// BackendOptions::deterministic adds independence from the batch: see linear().
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/backend.h"
#include "ops/cuda/capture_pipeline.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/gemm.h"
#include "ops/cuda/kernels.h"
#include "ops/cuda/stream_memory.h"
#include "ops/cuda/upload_ring.h"

namespace actcap::ops {
namespace cuda {
namespace {

constexpr int BATCH_UPLOAD_SLOTS = 4;       // begin_batch may run ahead of the GPU by this many batches
constexpr int ATTENTION_UPLOAD_SLOTS = 64;  // ... and of attention calls
constexpr int EXPERT_UPLOAD_SLOTS = 64;     // ... and of expert row gathers and scatters
constexpr size_t CONVERSION_CHUNK = size_t(1) << 20;

class Stream {
 public:
  Stream() { ACTCAP_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// cudaGetDeviceCount's error when it failed (no driver, a driver older than the runtime, ...), else empty.
std::string& device_count_error() {
  static std::string error;
  return error;
}

int device_count() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // not sticky: later calls must not see it
    device_count_error() = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    return 0;
  }
  device_count_error().clear();
  return count;
}

int select_device(const BackendOptions& options) {
  if (options.device.type != Device::Type::Cuda)
    fail("internal error: the CUDA backend was asked for device {}", options.device.name());
  if (options.dtype != DType::F32 && options.dtype != DType::BF16 && options.dtype != DType::F16)
    fail("--dtype {}: the CUDA backend computes in fp32, bf16 or fp16", dtype_name(options.dtype));
  const int count = device_count();
  if (options.device.index >= count)
    fail("--device {}: no such GPU (this machine has {})", options.device.name(), count);
  ACTCAP_CUDA(cudaSetDevice(options.device.index));
  uses_memory_pools(options.device.index);  // decided (and the pool set up) once, before any allocation
  return options.device.index;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BackendOptions& options)
      : options_(options),
        index_(select_device(options)),
        element_bytes_(dtype_size(options.dtype)),
        gemm_(stream_.get(), options.dtype, options.allow_tf32),
        batch_uploads_(stream_.get(), BATCH_UPLOAD_SLOTS),
        attention_uploads_(stream_.get(), ATTENTION_UPLOAD_SLOTS),
        expert_uploads_(stream_.get(), EXPERT_UPLOAD_SLOTS),
        capture_(index_, stream_.get(), options.dtype, options.capture_buffer_bytes) {}

  ~CudaBackend() override {
    cudaSetDevice(index_);
    cudaStreamSynchronize(stream_.get());
    for (void* p : owned_) stream_free(p, stream_.get());
    cudaStreamSynchronize(stream_.get());
  }

  Device device() const override { return options_.device; }
  DType dtype() const override { return options_.dtype; }

  const void* weight(const TensorView& host) override {
    use_device();
    const size_t n = size_t(host.numel());
    char* device = static_cast<char*>(own(n * element_bytes_));
    if (host.dtype == options_.dtype) {
      // Pageable source: the call returns once the data is staged, so `host` need not outlive the copy.
      if (n) ACTCAP_CUDA(cudaMemcpyAsync(device, host.data, n * element_bytes_, cudaMemcpyHostToDevice, stream()));
      return device;
    }
    std::vector<float> f32(std::min(n, CONVERSION_CHUNK));
    std::vector<char> converted(f32.size() * element_bytes_);
    const size_t source_bytes = dtype_size(host.dtype);
    for (size_t first = 0; first < n; first += CONVERSION_CHUNK) {
      const size_t count = std::min(CONVERSION_CHUNK, n - first);
      convert_to_f32(static_cast<const char*>(host.data) + first * source_bytes, host.dtype, f32.data(), count);
      convert_from_f32(f32.data(), options_.dtype, converted.data(), count);
      ACTCAP_CUDA(cudaMemcpyAsync(device + first * element_bytes_, converted.data(), count * element_bytes_,
                                  cudaMemcpyHostToDevice, stream()));
    }
    return device;
  }

  const float* f32_constant(std::span<const float> values) override {
    use_device();
    float* device = static_cast<float*>(own(values.size_bytes()));
    if (!values.empty())
      ACTCAP_CUDA(cudaMemcpyAsync(device, values.data(), values.size_bytes(), cudaMemcpyHostToDevice, stream()));
    return device;
  }

  Buffer allocate(int64_t elements) override {
    use_device();
    if (elements <= 0) return Buffer();
    void* p = stream_allocate(size_t(elements) * element_bytes_, stream());
    // The buffer is freed in stream order, after the ops queued so far that may still use it.
    return Buffer(p, size_t(elements) * element_bytes_, [index = index_, stream = stream()](void* data) {
      cudaSetDevice(index);
      stream_free(data, stream);
    });
  }

  void begin_batch(const ForwardBatch& batch) override {
    use_device();
    const int64_t rows = batch.rows();
    if (rows > INT_MAX) fail("internal error: a batch of {} rows", rows);
    std::vector<int32_t> staging(size_t(2 * rows), 0);  // token ids, then positions
    std::copy(batch.token_ids.begin(), batch.token_ids.end(), staging.begin());
    for (const BatchSequence& s : batch.sequences) {
      if (s.first_row < 0 || s.rows < 0 || s.first_row + s.rows > rows || s.first_position < 0 ||
          s.first_position + s.rows > INT_MAX)
        fail("internal error: batch sequence at row {} ({} rows, position {}) outside a batch of {} rows",
             s.first_row, s.rows, s.first_position, rows);
      for (int64_t r = 0; r < s.rows; ++r) staging[size_t(rows + s.first_row + r)] = int32_t(s.first_position + r);
    }
    auto* device = static_cast<int32_t*>(batch_uploads_.upload(staging.data(), staging.size() * sizeof(int32_t)));
    device_batch_ = DeviceBatch{device, device ? device + rows : nullptr, rows};
    sequences_ = batch.sequences;
  }

  void embed(const void* table, int64_t dim, void* out) override {
    use_device();
    launch_embed(options_.dtype, table, dim, device_batch_, out, stream());
  }

  void embed_positions(const void* table, int64_t dim, int64_t offset, void* out) override {
    use_device();
    launch_embed_positions(options_.dtype, table, dim, offset, device_batch_, out, stream());
  }

  // cuBLAS picks its kernel by matrix shape, so a row's bits can depend on the rows beside it. Deterministic mode
  // gives each sequence its own GEMMs (the last-position rows one each), as the CPU backend always does, so a
  // sequence's activations are the same bits in any batch.
  void linear(const Linear& layer, const void* x, int64_t rows, void* y) override {
    use_device();
    if (!options_.deterministic) {
      gemm_.linear(layer, x, rows, y);
    } else if (rows == device_batch_.rows) {
      for (const BatchSequence& s : sequences_)
        gemm_.linear(layer, at(x, s.first_row * layer.in), s.rows, at(y, s.first_row * layer.out));
    } else {
      for (int64_t r = 0; r < rows; ++r) gemm_.linear(layer, at(x, r * layer.in), 1, at(y, r * layer.out));
    }
  }

  void layer_norm(const void* x, int64_t rows, int64_t dim, const void* weight, const void* bias, float eps,
                  void* y) override {
    use_device();
    launch_layer_norm(options_.dtype, x, rows, dim, weight, bias, eps, y, stream());
  }

  void rms_norm(const void* x, int64_t rows, int64_t dim, const void* weight, float eps, void* y) override {
    use_device();
    launch_rms_norm(options_.dtype, x, rows, dim, weight, eps, y, stream());
  }

  void rotary(void* x, int64_t heads, int64_t head_dim, const RotaryTable& table) override {
    use_device();
    if (!table.long_inv_freq) {
      launch_rotary(options_.dtype, x, heads, head_dim, table.rotary_dims, table.inv_freq, table.attention_scaling,
                    device_batch_, stream());
      return;
    }
    // LongRoPE picks a table per sequence: one launch over each sequence's rows.
    for (const BatchSequence& s : sequences_) {
      const bool long_table = s.first_position + s.rows > table.long_after;
      const DeviceBatch rows{device_batch_.token_ids + s.first_row, device_batch_.positions + s.first_row, s.rows};
      launch_rotary(options_.dtype, static_cast<char*>(x) + s.first_row * heads * head_dim * int64_t(element_bytes_),
                    heads, head_dim, table.rotary_dims, long_table ? table.long_inv_freq : table.inv_freq,
                    table.attention_scaling, rows, stream());
    }
  }

  void attention(const AttentionShape& shape, const void* q, std::span<const AttentionSequence> sequences,
                 void* z) override {
    use_device();
    if (sequences.size() != sequences_.size())
      fail("internal error: attention over {} sequences in a batch of {}", sequences.size(), sequences_.size());
    if (shape.head_dim > MAX_ATTENTION_HEAD_DIM)
      fail("attention head_dim {} is not supported by the CUDA backend (at most {})", shape.head_dim,
           MAX_ATTENTION_HEAD_DIM);
    std::vector<AttentionTask> tasks(sequences.size());
    int64_t max_rows = 0;
    for (size_t i = 0; i < tasks.size(); ++i) {
      const BatchSequence& s = sequences_[i];
      tasks[i] = AttentionTask{s.first_row,         s.rows, s.first_position, sequences[i].keys,
                               sequences[i].values, sequences[i].pattern};
      max_rows = std::max(max_rows, s.rows);
      if (sequences[i].pattern && s.rows > 0) {
        const size_t bytes = size_t(s.rows * shape.heads * (s.first_position + s.rows)) * element_bytes_;
        ACTCAP_CUDA(cudaMemsetAsync(sequences[i].pattern, 0, bytes, stream()));
      }
    }
    const auto* device_tasks =
        static_cast<const AttentionTask*>(attention_uploads_.upload(tasks.data(), tasks.size() * sizeof(AttentionTask)));
    const AttentionParams params{shape.heads, shape.kv_heads, shape.head_dim,
                                 ScoreSteps{shape.scale, {shape.divisors[0], shape.divisors[1]}, shape.softcap},
                                 shape.sliding_window};
    launch_attention(options_.dtype, params, q, device_tasks, int64_t(tasks.size()), max_rows, z, stream());
  }

  void activate(Activation activation, void* x, int64_t n) override {
    use_device();
    launch_activate(options_.dtype, activation, x, n, stream());
  }

  void gated_activate(Activation activation, const void* gate, const void* up, void* out, int64_t n) override {
    use_device();
    launch_gated_activate(options_.dtype, activation, gate, up, out, n, stream());
  }

  void add(const void* a, const void* b, void* out, int64_t n) override {
    use_device();
    launch_add(options_.dtype, a, b, out, n, stream());
  }

  void scale(void* x, float factor, int64_t n) override {
    use_device();
    launch_scale(options_.dtype, x, factor, n, stream());
  }

  void gemma_rms_norm(const void* x, int64_t rows, int64_t dim, const void* weight, float eps, void* y) override {
    use_device();
    launch_gemma_rms_norm(options_.dtype, x, rows, dim, weight, eps, y, stream());
  }

  void softcap(void* x, float cap, int64_t n) override {
    use_device();
    launch_softcap(options_.dtype, x, cap, n, stream());
  }

  void copy_rows(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch, int64_t width,
                 int64_t rows) override {
    use_device();
    if (width <= 0 || rows <= 0) return;
    const size_t e = element_bytes_;
    if (rows == 1) {  // a 2D copy would insist on pitches of at least the width
      ACTCAP_CUDA(cudaMemcpyAsync(dst, src, size_t(width) * e, cudaMemcpyDeviceToDevice, stream()));
      return;
    }
    ACTCAP_CUDA(cudaMemcpy2DAsync(dst, size_t(dst_pitch) * e, src, size_t(src_pitch) * e, size_t(width) * e,
                                  size_t(rows), cudaMemcpyDeviceToDevice, stream()));
  }

  void gather_rows(const void* src, int64_t width, std::span<const int32_t> rows, void* dst) override {
    use_device();
    if (rows.empty()) return;
    const auto* device_rows = static_cast<const int32_t*>(expert_uploads_.upload(rows.data(), rows.size_bytes()));
    launch_gather_rows(options_.dtype, src, width, device_rows, int64_t(rows.size()), dst, stream());
  }

  void scatter_add_rows(const void* src, int64_t width, std::span<const int32_t> rows, std::span<const float> weights,
                        void* dst) override {
    use_device();
    if (rows.empty()) return;
    if (weights.size() != rows.size()) internal_error("scatter_add_rows: one weight per row");
    // One upload: the row indices, then their weights.
    std::vector<char> staging(rows.size_bytes() + weights.size_bytes());
    std::memcpy(staging.data(), rows.data(), rows.size_bytes());
    std::memcpy(staging.data() + rows.size_bytes(), weights.data(), weights.size_bytes());
    const auto* device = static_cast<const char*>(expert_uploads_.upload(staging.data(), staging.size()));
    launch_scatter_add_rows(options_.dtype, src, width, reinterpret_cast<const int32_t*>(device),
                            reinterpret_cast<const float*>(device + rows.size_bytes()), int64_t(rows.size()), dst,
                            stream());
  }

  void upload(const float* host, int64_t elements, void* dst) override {
    use_device();
    if (elements <= 0) return;
    // Pageable sources: each copy returns once its data is staged, so neither buffer need outlive the call.
    if (options_.dtype == DType::F32) {
      ACTCAP_CUDA(cudaMemcpyAsync(dst, host, size_t(elements) * sizeof(float), cudaMemcpyHostToDevice, stream()));
      return;
    }
    std::vector<char> converted(size_t(elements) * element_bytes_);
    convert_from_f32(host, options_.dtype, converted.data(), size_t(elements));
    ACTCAP_CUDA(cudaMemcpyAsync(dst, converted.data(), converted.size(), cudaMemcpyHostToDevice, stream()));
  }

  std::vector<float> to_host(const void* src, int64_t elements) override {
    use_device();
    std::vector<float> out(size_t(std::max<int64_t>(elements, 0)));
    if (out.empty()) {
      ACTCAP_CUDA(cudaStreamSynchronize(stream()));
      return out;
    }
    if (options_.dtype == DType::F32) {
      ACTCAP_CUDA(cudaMemcpyAsync(out.data(), src, out.size() * sizeof(float), cudaMemcpyDeviceToHost, stream()));
      ACTCAP_CUDA(cudaStreamSynchronize(stream()));
      return out;
    }
    std::vector<uint16_t> raw(out.size());
    ACTCAP_CUDA(cudaMemcpyAsync(raw.data(), src, raw.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost, stream()));
    ACTCAP_CUDA(cudaStreamSynchronize(stream()));
    convert_to_f32(raw.data(), options_.dtype, out.data(), out.size());
    return out;
  }

  void capture(const void* src, int64_t elements, std::function<void(const float* host)> deliver) override {
    use_device();
    capture_.capture(src, elements, std::move(deliver));
  }

  void synchronize() override {
    use_device();
    ACTCAP_CUDA(cudaStreamSynchronize(stream()));
    capture_.synchronize();
  }

  void rms_norm_fp32_weight(const void* x, int64_t rows, int64_t dim, const void* weight, float eps,
                            void* y) override {
    use_device();
    launch_rms_norm_fp32_weight(options_.dtype, x, rows, dim, weight, eps, y, stream());
  }

  void rotary_fp32_tables(void* x, int64_t heads, int64_t head_dim, const float* inv_freq) override {
    use_device();
    launch_rotary_fp32_tables(options_.dtype, x, heads, head_dim, inv_freq, device_batch_, stream());
  }

  void clamp(void* x, float limit, int64_t n) override {
    use_device();
    launch_clamp(options_.dtype, x, limit, n, stream());
  }

 private:
  cudaStream_t stream() const { return stream_.get(); }
  // The current device is per host thread; make it this backend's before touching it.
  void use_device() const { ACTCAP_CUDA(cudaSetDevice(index_)); }

  void* at(const void* p, int64_t elements) const {
    return static_cast<char*>(const_cast<void*>(p)) + size_t(elements) * element_bytes_;
  }

  void* own(size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = stream_allocate(bytes, stream());
    owned_.push_back(p);
    return p;
  }

  const BackendOptions options_;
  const int index_;
  const size_t element_bytes_;
  Stream stream_;  // destroyed last among the members that queue work on it
  Gemm gemm_;
  UploadRing batch_uploads_, attention_uploads_, expert_uploads_;
  CapturePipeline capture_;
  std::vector<void*> owned_;  // weights and constants
  DeviceBatch device_batch_;
  std::vector<BatchSequence> sequences_;
};

}  // namespace
}  // namespace cuda

}  // namespace actcap::ops

// The plugin's entry points (ops/cuda_plugin.cpp loads them).
extern "C" __attribute__((visibility("default"))) int actcap_cuda_device_count() {
  return actcap::ops::cuda::device_count();
}

// Why the last actcap_cuda_device_count() found no GPU, when the driver said why; null otherwise.
extern "C" __attribute__((visibility("default"))) const char* actcap_cuda_device_error() {
  const std::string& error = actcap::ops::cuda::device_count_error();
  return error.empty() ? nullptr : error.c_str();
}

extern "C" __attribute__((visibility("default"))) actcap::ops::Backend* actcap_cuda_make_backend(
    const actcap::ops::BackendOptions* options) {
  return new actcap::ops::cuda::CudaBackend(*options);
}
