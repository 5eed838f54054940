// The host backend: fp32 or bf16 activations in ordinary memory, kernels from ops/cpu, everything synchronous.
#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <vector>

#include "core/error.h"
#include "ops/backend.h"
#include "ops/cpu/kernels.h"

namespace actcap::ops {
namespace {

const float* f32(const void* p) { return static_cast<const float*>(p); }
float* f32(void* p) { return static_cast<float*>(p); }

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(DType dtype) : dtype_(dtype) {}
  Device device() const override { return Device{}; }
  DType dtype() const override { return dtype_; }

  // Matrices (rank >= 2: linear weights, embedding tables) are used in place from the memory-mapped checkpoint
  // when the kernels read their dtype (F32/BF16/F16 with fp32 activations, BF16 with bf16 ones), else converted
  // once; the GEMM and embedding kernels widen them tile by tile. Vectors (norm weights, biases) become fp32
  // copies, holding values rounded to the backend's dtype (what model.to(dtype) gives).
  const void* weight(const TensorView& host) override {
    if (host.shape.size() >= 2) {
      const bool readable = dtype_ == DType::F32 ? host.dtype == DType::F32 || host.dtype == DType::BF16 ||
                                                        host.dtype == DType::F16
                                                  : host.dtype == dtype_;
      const DType kept = readable ? host.dtype : dtype_;
      const void* data = host.data;
      if (!readable) {
        Tensor converted(host.shape, kept);
        const Tensor wide = Tensor::to_f32(host);
        convert_from_f32(wide.f32(), kept, converted.data(), size_t(wide.numel()));
        owned_.push_back(std::move(converted));
        data = owned_.back().data();
      }
      const char* begin = static_cast<const char*>(data);
      matrices_[begin] = Matrix{begin + host.numel() * int64_t(dtype_size(kept)), kept};
      return data;
    }
    if (host.dtype == DType::F32 && dtype_ == DType::F32) return host.data;
    owned_.push_back(Tensor::to_f32(host));
    float* values = owned_.back().f32();
    for (int64_t i = 0; i < owned_.back().numel(); ++i) values[i] = round_to(dtype_, values[i]);
    return values;
  }
  const float* f32_constant(std::span<const float> values) override {
    owned_.emplace_back(Shape{int64_t(values.size())});
    std::copy(values.begin(), values.end(), owned_.back().f32());
    return owned_.back().f32();
  }
  Buffer allocate(int64_t elements) override {
    auto* tensor = new Tensor({elements}, dtype_);
    return Buffer(tensor->data(), tensor->nbytes(), [tensor](void*) { delete tensor; });
  }

  void begin_batch(const ForwardBatch& batch) override { batch_ = batch; }

  void embed(const void* table, int64_t dim, void* out) override {
    for (int64_t r = 0; r < batch_.rows(); ++r)
      copy_table_rows(table, batch_.token_ids[size_t(r)] * dim, dim, at(out, r * dim));
  }
  void embed_positions(const void* table, int64_t dim, int64_t offset, void* out) override {
    for (const BatchSequence& s : batch_.sequences)
      copy_table_rows(table, (s.first_position + offset) * dim, dim * s.rows, at(out, s.first_row * dim));
  }
  void linear(const Linear& layer, const void* x, int64_t rows, void* y) override {
    const LinearOutput output{&layer, y};
    linears(x, rows, {&output, 1});
  }
  void linears(const void* x, int64_t rows, std::span<const LinearOutput> outputs) override {
    if (outputs.empty()) return;
    const int64_t together = cpu::linear_independent_rows(*outputs[0].layer, dtype_);
    const auto grouped_alike = [&](const LinearOutput& o) {
      return cpu::linear_independent_rows(*o.layer, dtype_) == together;
    };
    if (!std::all_of(outputs.begin(), outputs.end(), grouped_alike)) {
      for (const LinearOutput& output : outputs) linears(x, rows, {&output, 1});
      return;
    }
    std::vector<cpu::LinearCall> calls(outputs.size());
    for_each_row_run(rows, together, [&](int64_t first, int64_t count) {
      for (size_t i = 0; i < outputs.size(); ++i) {
        const Linear& layer = *outputs[i].layer;
        calls[i] = {&layer, dtype_of(layer.weight), at(outputs[i].y, first * layer.out)};
      }
      cpu::linear(calls, dtype_, at(x, first * outputs[0].layer->in), count);
    });
  }
  void layer_norm(const void* x, int64_t rows, int64_t dim, const void* weight, const void* bias, float eps,
                  void* y) override {
    cpu::layer_norm(dtype_, x, rows, dim, f32(weight), f32(bias), eps, y);
  }
  void rms_norm(const void* x, int64_t rows, int64_t dim, const void* weight, float eps, void* y) override {
    cpu::rms_norm(dtype_, x, rows, dim, f32(weight), eps, y);
  }
  void rotary(void* x, int64_t heads, int64_t head_dim, const RotaryTable& table) override {
    for (const BatchSequence& s : batch_.sequences) {
      const bool long_table = table.long_inv_freq && s.first_position + s.rows > table.long_after;
      cpu::apply_rotary(dtype_, at(x, s.first_row * heads * head_dim), s.rows, heads, head_dim, s.first_position,
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
      cpu::attention(dtype_, shape, at(q, s.first_row * width), s.rows, s.first_position, sequences[i].keys,
                     sequences[i].values, at(z, s.first_row * width), sequences[i].pattern);
    }
  }
  void activate(Activation activation, void* x, int64_t n) override { cpu::activate(dtype_, activation, x, n); }
  void gated_activate(Activation activation, const void* gate, const void* up, void* out, int64_t n) override {
    cpu::gated_activate(dtype_, activation, gate, up, out, n);
  }
  void add(const void* a, const void* b, void* out, int64_t n) override { cpu::add(dtype_, a, b, out, n); }
  void scale(void* x, float factor, int64_t n) override { cpu::scale(dtype_, x, factor, n); }
  void copy_rows(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch, int64_t width,
                 int64_t rows) override {
    for (int64_t r = 0; r < rows; ++r)
      std::memmove(at(dst, r * dst_pitch), at(src, r * src_pitch), dtype_size(dtype_) * size_t(width));
  }

  void gather_rows(const void* src, int64_t width, std::span<const int32_t> rows, void* dst) override {
    cpu::gather_rows(dtype_, src, width, rows, dst);
  }
  void scatter_add_rows(const void* src, int64_t width, std::span<const int32_t> rows, std::span<const float> weights,
                        void* dst) override {
    cpu::scatter_add_rows(dtype_, src, width, rows, weights, dst);
  }

  void upload(const float* host, int64_t elements, void* dst) override {
    convert_from_f32(host, dtype_, dst, size_t(elements));
  }

  std::vector<float> to_host(const void* src, int64_t elements) override {
    std::vector<float> host(static_cast<size_t>(elements));
    convert_to_f32(src, dtype_, host.data(), host.size());
    return host;
  }
  void capture(const void* src, int64_t elements, std::function<void(const float*)> deliver) override {
    if (dtype_ == DType::F32) return deliver(f32(src));
    deliver(to_host(src, elements).data());
  }
  void synchronize() override {}
  void rms_norm_fp32_weight(const void* x, int64_t rows, int64_t dim, const void* weight, float eps,
                            void* y) override {
    cpu::rms_norm_fp32_weight(dtype_, x, rows, dim, f32(weight), eps, y);
  }
  void rotary_fp32_tables(void* x, int64_t heads, int64_t head_dim, const float* inv_freq) override {
    for (const BatchSequence& s : batch_.sequences)
      cpu::apply_rotary_fp32_tables(dtype_, at(x, s.first_row * heads * head_dim), s.rows, heads, head_dim,
                                    s.first_position, inv_freq);
  }
  void clamp(void* x, float limit, int64_t n) override { cpu::clamp(dtype_, x, limit, n); }

  void gemma_rms_norm(const void* x, int64_t rows, int64_t dim, const void* weight, float eps, void* y) override {
    cpu::gemma_rms_norm(dtype_, x, rows, dim, f32(weight), eps, y);
  }
  void softcap(void* x, float cap, int64_t n) override { cpu::softcap(dtype_, x, cap, n); }

 private:
  struct Matrix {
    const char* end;
    DType dtype;
  };

  // The dtype of the matrix weight() handed out that holds `p` (a layer may start inside one, e.g. an expert's
  // slice); anything else holds the backend's dtype.
  DType dtype_of(const void* p) const {
    const char* byte = static_cast<const char*>(p);
    auto it = matrices_.upper_bound(byte);
    if (it == matrices_.begin()) return dtype_;
    --it;
    return byte < it->second.end ? it->second.dtype : dtype_;
  }
  void* at(const void* p, int64_t elements) const {
    return static_cast<char*>(const_cast<void*>(p)) + elements * int64_t(dtype_size(dtype_));
  }
  // Each sequence's rows go through their own GEMM calls, as if it were alone: OpenBLAS picks its kernels by
  // matrix size, so sharing a call with other sequences would change a sequence's bits. Where the kernels compute
  // every row on its own (`together`: cpu::linear_independent_rows), consecutive sequences of at most that many
  // rows share calls, so a decode step streams the weights once for the whole batch. Rows that are not the
  // batch's (one per sequence: the last positions) count as sequences of one row. Calls compute(first, count).
  void for_each_row_run(int64_t rows, int64_t together, const std::function<void(int64_t, int64_t)>& compute) const {
    int64_t run_first = 0, run_rows = 0;  // consecutive rows waiting to be computed in one call
    auto flush = [&] {
      if (run_rows > 0) compute(run_first, run_rows);
      run_rows = 0;
    };
    auto sequence = [&](int64_t first, int64_t count) {
      if (count > together) {
        flush();
        return compute(first, count);
      }
      if (run_rows + count > together || first != run_first + run_rows) flush();
      if (run_rows == 0) run_first = first;
      run_rows += count;
    };
    if (rows == batch_.rows()) {
      for (const BatchSequence& s : batch_.sequences) sequence(s.first_row, s.rows);
    } else {
      for (int64_t r = 0; r < rows; ++r) sequence(r, 1);
    }
    flush();
  }
  // `count` elements of a weight table from element `first`, converted to the backend's dtype.
  void copy_table_rows(const void* table, int64_t first, int64_t count, void* out) const {
    const DType stored = dtype_of(table);
    const char* src = static_cast<const char*>(table) + first * int64_t(dtype_size(stored));
    if (stored == dtype_) {
      std::memcpy(out, src, size_t(count) * dtype_size(stored));
    } else if (dtype_ == DType::F32) {
      convert_to_f32(src, stored, f32(out), size_t(count));
    } else {
      fail("internal error: a {} table in a {} backend", dtype_name(stored), dtype_name(dtype_));
    }
  }

  DType dtype_;
  std::deque<Tensor> owned_;
  std::map<const char*, Matrix> matrices_;  // by first byte
  ForwardBatch batch_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16)
    fail("--dtype {}: the CPU backend computes in fp32 or bf16 (fp16 needs --device cuda; --store-dtype stores it "
         "from an fp32 run)",
         dtype_name(dtype));
  return std::make_unique<CpuBackend>(dtype);
}

}  // namespace actcap::ops
