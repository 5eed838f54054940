#pragma once
// Element types as safetensors names them, and exact conversions between the 16-bit floats and fp32.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace actcap {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

std::string_view dtype_name(DType dtype);          // "F32", "BF16", ... (safetensors spelling)
DType parse_dtype(std::string_view name);           // throws actcap::Error on an unknown name
size_t dtype_size(DType dtype);
std::string_view numpy_descr(DType dtype);          // "<f4", "<f2", ... (bf16 has none: throws)

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as torch's .to(torch.bfloat16) does; NaN stays a quiet NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even, overflow to inf

// `value` as a tensor of `dtype` holds it: rounded to bf16/fp16 (nearest even), unchanged for F32.
inline float round_to(DType dtype, float value) {
  if (dtype == DType::BF16) return bf16_to_f32(f32_to_bf16(value));
  if (dtype == DType::F16) return f16_to_f32(f32_to_f16(value));
  return value;
}

// Converts n elements of `src` (of type `from`) into fp32.
void convert_to_f32(const void* src, DType from, float* dst, size_t n);
// Converts n fp32 values into `to` (F32, F16 or BF16).
void convert_from_f32(const float* src, DType to, void* dst, size_t n);

}  // namespace actcap
