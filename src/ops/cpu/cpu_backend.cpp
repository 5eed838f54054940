// The host backend: fp32 buffers in ordinary memory, kernels from ops/cpu, everything synchronous.
#include <cstring>
#include <deque>

#include "core/error.h"
#include "ops/backend.h"
#include "ops/cpu/kernels.h"

namespace actcap::ops {
namespace {

const float* f32(const void* p) { return static_cast<const float*>(p); }
float* f32(void* p) { return static_cast<float*>(p); }

class CpuBackend : public Backend {
 public:
  Device device() const override { return Device{}; }
  DType dtype() const override { return DType::F32; }

  const void* weight(const TensorView& host) override {
    if (host.dtype == DType::F32) return host.data;
    owned_.push_back(Tensor::to_f32(host));
    return owned_.back().data();
  }
  const float* f32_constant(std::span<const float> values) override {
    owned_.emplace_back(Shape{int64_t(values.size())});
    std::copy(values.begin(), values.end(), owned_.back().f32());
    return owned_.back().f32();
  }
  Buffer allocate(int64_t elements) override {
    auto* tensor = new Tensor({elements});
    return Buffer(tensor->data(), tensor->nbytes(), [tensor](void*) { delete tensor; });
  }

  void begin_batch(const ForwardBatch& batch) override { batch_ = batch; }

  void embed(const void* table, int64_t dim, void* out) override {
    for (int64_t r = 0; r < batch_.rows(); ++r)
      std::memcpy(f32(out) + r * dim, f32(table) + batch_.token_ids[size_t(r)] * dim, sizeof(float) * dim);
  }
  void embed_positions(const void* table, int64_t dim, int64_t offset, void* out) override {
    for (const BatchSequence& s : batch_.sequences)
      std::memcpy(f32(out) + s.first_row * dim, f32(table) + (s.first_position + offset) * dim,
                  sizeof(float) * dim * s.rows);
  }
  // Each sequence's rows go through their own GEMM calls, as if it were alone: OpenBLAS picks its kernels by
  // matrix size, so sharing a call with other sequences would change a sequence's bits. Rows that are not the
  // batch's (one per sequence: the last positions) are computed one at a time for the same reason.
  void linear(const Linear& layer, const void* x, int64_t rows, void* y) override {
    if (rows == batch_.rows()) {
      for (const BatchSequence& s : batch_.sequences)
        cpu::linear(layer, f32(x) + s.first_row * layer.in, s.rows, f32(y) + s.first_row * layer.out);
    } else {
      for (int64_t r = 0; r < rows; ++r) cpu::linear(layer, f32(x) + r * layer.in, 1, f32(y) + r * layer.out);
    }
  }
  void layer_norm(const void* x, int64_t rows, int64_t dim, const void* weight, const void* bias, float eps,
                  void* y) override {
    cpu::layer_norm(f32(x), rows, dim, f32(weight), f32(bias), eps, f32(y));
  }
  void rms_norm(const void* x, int64_t rows, int64_t dim, const void* weight, float eps, void* y) override {
    cpu::rms_norm(f32(x), rows, dim, f32(weight), eps, f32(y));
  }
  void rotary(void* x, int64_t heads, int64_t head_dim, const RotaryTable& table) override {
    for (const BatchSequence& s : batch_.sequences) {
      const bool long_table = table.long_inv_freq && s.first_position + s.rows > table.long_after;
      cpu::apply_rotary(f32(x) + s.first_row * heads * head_dim, s.rows, heads, head_dim, s.first_position,
                        table.rotary_dims, long_table ? table.long_inv_freq : table.inv_freq,
                        table.attention_scaling);
    }
  }
  void attention(const AttentionShape& shape, const void* q, std::span<const AttentionSequence> sequences,
                 void* z) override {
    if (sequences.size() != batch_.sequences.size())
      fail("internal error: attention over {} sequences in a batch of {}", sequences.size(), batch_.sequences.size());
    const int64_t width = shape.heads * shape.head_dim;
    for (size_t i = 0; i < sequences.size(); ++i) {
      const BatchSequence& s = batch_.sequences[i];
      cpu::attention(shape, f32(q) + s.first_row * width, s.rows, s.first_position, f32(sequences[i].keys),
                     f32(sequences[i].values), f32(z) + s.first_row * width, f32(sequences[i].pattern));
    }
  }
  void activate(Activation activation, void* x, int64_t n) override { cpu::activate(activation, f32(x), n); }
  void gated_activate(Activation activation, const void* gate, const void* up, void* out, int64_t n) override {
    cpu::gated_activate(activation, f32(gate), f32(up), f32(out), n);
  }
  void add(const void* a, const void* b, void* out, int64_t n) override { cpu::add(f32(a), f32(b), f32(out), n); }
  void scale(void* x, float factor, int64_t n) override { cpu::scale(f32(x), factor, n); }
  void copy_rows(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch, int64_t width,
                 int64_t rows) override {
    for (int64_t r = 0; r < rows; ++r)
      std::memmove(f32(dst) + r * dst_pitch, f32(src) + r * src_pitch, sizeof(float) * width);
  }

  void upload(const float* host, int64_t elements, void* dst) override {
    std::memcpy(dst, host, sizeof(float) * size_t(elements));
  }

  std::vector<float> to_host(const void* src, int64_t elements) override {
    return std::vector<float>(f32(src), f32(src) + elements);
  }
  void capture(const void* src, int64_t, std::function<void(const float*)> deliver) override { deliver(f32(src)); }
  void synchronize() override {}

 private:
  std::deque<Tensor> owned_;
  ForwardBatch batch_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace actcap::ops
