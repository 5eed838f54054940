#pragma once
// Element types of the CPU backend's activations: fp32, or bf16 held as its 16 bits. Kernels compute in fp32
// and round to the storage type where PyTorch rounds (rd<T> is the identity for fp32), as ops/cuda/numeric.cuh
// does on the GPU. The conversions are branch-free bit arithmetic, so loops over them auto-vectorise.
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace actcap::ops::cpu {

struct bf16 {
  uint16_t bits;
};

inline float to_f(float v) { return v; }
inline float to_f(bf16 v) { return bf16_to_f32(v.bits); }

template <typename T>
T from_f(float v);
template <>
inline float from_f<float>(float v) {
  return v;
}
template <>
inline bf16 from_f<bf16>(float v) {
  return bf16{f32_to_bf16(v)};
}

// The value an fp32 result has once stored as T (round to nearest even).
template <typename T>
float rd(float v) {
  return to_f(from_f<T>(v));
}

// Calls fn(T{}) with T the storage type of `dtype`.
template <typename Fn>
void dispatch(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::F32:
      fn(float{});
      return;
    case DType::BF16:
      fn(bf16{});
      return;
    default:
      fail("internal error: the CPU backend has no kernels for {}", dtype_name(dtype));
  }
}

}  // namespace actcap::ops::cpu
