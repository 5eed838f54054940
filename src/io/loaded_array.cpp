// widen_to_f64 (loaded_array.h).
#include "io/loaded_array.h"

#include <cstring>

#include "core/error.h"

namespace actcap {

namespace {
template <class T>
void widen(const void* data, size_t n, double* out) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, static_cast<const char*>(data) + i * sizeof(T), sizeof(T));
    out[i] = double(v);
  }
}
}  // namespace

std::vector<double> widen_to_f64(const void* data, DType dtype, size_t n) {
  std::vector<double> out(n);
  switch (dtype) {
    case DType::F64: widen<double>(data, n, out.data()); break;
    case DType::I64: widen<int64_t>(data, n, out.data()); break;
    case DType::I32: widen<int32_t>(data, n, out.data()); break;
    case DType::I16: widen<int16_t>(data, n, out.data()); break;
    case DType::I8: widen<int8_t>(data, n, out.data()); break;
    case DType::U8: widen<uint8_t>(data, n, out.data()); break;
    case DType::F32: case DType::F16: case DType::BF16: {
      std::vector<float> f(n);
      convert_to_f32(data, dtype, f.data(), n);
      for (size_t i = 0; i < n; ++i) out[i] = f[i];
      break;
    }
    case DType::BOOL: fail("a boolean array is not numeric");
  }
  return out;
}

}  // namespace actcap
