#pragma once
// Tensors on the host: a TensorView borrows memory (a mapped checkpoint, a caller's buffer);
// a Tensor owns a 64-byte aligned buffer. Shapes are row-major (C order), as in safetensors and numpy.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace actcap {

using Shape = std::vector<int64_t>;

int64_t num_elements(std::span<const int64_t> shape);
std::string shape_string(std::span<const int64_t> shape);  // "[2, 3]"

struct TensorView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  Shape shape;

  int64_t numel() const { return num_elements(shape); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  const float* f32() const;  // checks dtype == F32
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(Shape shape, DType dtype = DType::F32);  // zero-initialised
  static Tensor copy_of(const TensorView& view);
  static Tensor to_f32(const TensorView& view);   // converts F16/BF16/F64 to F32

  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int rank() const { return int(shape_.size()); }
  DType dtype() const { return dtype_; }
  int64_t numel() const { return num_elements(shape_); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }

  void* data() { return data_.get(); }
  const void* data() const { return data_.get(); }
  float* f32();
  const float* f32() const;
  TensorView view() const { return TensorView{data(), dtype_, shape_}; }

  // Same buffer, new shape with the same element count.
  void reshape(Shape shape);

 private:
  struct AlignedFree {
    void operator()(void* p) const;
  };
  Shape shape_;
  DType dtype_ = DType::F32;
  std::unique_ptr<void, AlignedFree> data_;
};

}  // namespace actcap
