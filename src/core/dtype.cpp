#include "core/dtype.h"

#include <cstring>

#include "core/error.h"

namespace actcap {

namespace {
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
  std::string_view numpy;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4, "<f4"},  {DType::F16, "F16", 2, "<f2"}, {DType::BF16, "BF16", 2, ""},
    {DType::F64, "F64", 8, "<f8"},  {DType::I64, "I64", 8, "<i8"}, {DType::I32, "I32", 4, "<i4"},
    {DType::I16, "I16", 2, "<i2"},  {DType::I8, "I8", 1, "|i1"},   {DType::U8, "U8", 1, "|u1"},
    {DType::BOOL, "BOOL", 1, "|b1"},
};
const DTypeInfo& info(DType dtype) {
  for (const auto& i : kDTypes)
    if (i.dtype == dtype) return i;
  fail("internal error: unknown dtype {}", int(dtype));
}
}  // namespace

std::string_view dtype_name(DType dtype) { return info(dtype).name; }
size_t dtype_size(DType dtype) { return info(dtype).size; }

DType parse_dtype(std::string_view name) {
  for (const auto& i : kDTypes)
    if (i.name == name) return i.dtype;
  fail("unsupported dtype '{}'", name);
}

std::string_view numpy_descr(DType dtype) {
  auto d = info(dtype).numpy;
  if (d.empty()) fail("dtype {} has no numpy equivalent", dtype_name(dtype));
  return d;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int shift = 0;
    while (!(mantissa & 0x400u)) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3ffu;
    bits = sign | (uint32_t(113 - shift) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {                                  // subnormal or zero in fp16
    if (abs < 0x33000000u) return uint16_t(sign);           // below half the smallest subnormal
    uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    int shift = 126 - int(abs >> 23);  // fp16 subnormal ulp is 2^-24: drop 14..24 bits
    uint32_t value = mantissa >> shift;
    uint32_t rem = mantissa & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (value & 1u))) ++value;
    return uint16_t(sign | value);
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
}

namespace {

// Element i of a buffer that need not be aligned to T (a safetensors data section may start anywhere): memcpy
// is the defined way to load it, and compiles to a plain load.
template <typename T>
T load(const void* src, size_t i) {
  T value;
  std::memcpy(&value, static_cast<const uint8_t*>(src) + i * sizeof(T), sizeof(T));
  return value;
}

template <typename T>
void store(void* dst, size_t i, T value) {
  std::memcpy(static_cast<uint8_t*>(dst) + i * sizeof(T), &value, sizeof(T));
}

}  // namespace

void convert_to_f32(const void* src, DType from, float* dst, size_t n) {
  switch (from) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load<uint16_t>(src, i));
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load<uint16_t>(src, i));
      return;
    case DType::F64:
      for (size_t i = 0; i < n; ++i) dst[i] = float(load<double>(src, i));
      return;
    default:
      fail("cannot convert {} to F32", dtype_name(from));
  }
}

void convert_from_f32(const float* src, DType to, void* dst, size_t n) {
  switch (to) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) store(dst, i, f32_to_bf16(src[i]));
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) store(dst, i, f32_to_f16(src[i]));
      return;
    default:
      fail("cannot convert F32 to {}", dtype_name(to));
  }
}

}  // namespace actcap
