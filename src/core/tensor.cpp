#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace actcap {

int64_t num_elements(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const float* TensorView::f32() const {
  if (dtype != DType::F32) fail("internal error: expected an F32 tensor, got {}", dtype_name(dtype));
  return static_cast<const float*>(data);
}

void Tensor::AlignedFree::operator()(void* p) const { std::free(p); }

Tensor::Tensor(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  for (int64_t d : shape_)
    if (d < 0) fail("internal error: negative dimension in {}", shape_string(shape_));
  size_t bytes = nbytes();
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) fail("out of memory allocating {} bytes", bytes);
  std::memset(p, 0, rounded ? rounded : 64);
  data_.reset(p);
}

Tensor Tensor::copy_of(const TensorView& view) {
  Tensor t(view.shape, view.dtype);
  std::memcpy(t.data(), view.data, view.nbytes());
  return t;
}

Tensor Tensor::to_f32(const TensorView& view) {
  Tensor t(view.shape, DType::F32);
  convert_to_f32(view.data, view.dtype, t.f32(), size_t(view.numel()));
  return t;
}

float* Tensor::f32() {
  if (dtype_ != DType::F32) fail("internal error: expected an F32 tensor, got {}", dtype_name(dtype_));
  return static_cast<float*>(data());
}

const float* Tensor::f32() const {
  if (dtype_ != DType::F32) fail("internal error: expected an F32 tensor, got {}", dtype_name(dtype_));
  return static_cast<const float*>(data());
}

void Tensor::reshape(Shape shape) {
  if (num_elements(shape) != numel())
    fail("internal error: cannot reshape {} to {}", shape_string(shape_), shape_string(shape));
  shape_ = std::move(shape);
}

}  // namespace actcap
