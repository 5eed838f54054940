// Mixture-of-experts row movement: gathering one expert's rows and adding its weighted output back, in fp32 or
// bf16 storage.
#include <cstring>
#include <vector>

#include "ops/cpu/kernels.h"
#include "ops/cpu/numeric.h"

namespace actcap::ops::cpu {

void gather_rows(DType dtype, const void* src, int64_t width, std::span<const int32_t> rows, void* dst) {
  const size_t row_bytes = dtype_size(dtype) * size_t(width);
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(static_cast<char*>(dst) + i * row_bytes, static_cast<const char*>(src) + size_t(rows[i]) * row_bytes,
                row_bytes);
}

void scatter_add_rows(DType dtype, const void* src, int64_t width, std::span<const int32_t> rows,
                      std::span<const float> weights, void* dst) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    // The product is stored (rounded to T) before it is added, as HF's two operations round twice: one
    // expression could be contracted into a fused multiply-add, which rounds once.
    std::vector<float> weighted(static_cast<size_t>(width));
    for (size_t i = 0; i < rows.size(); ++i) {
      const T* in = static_cast<const T*>(src) + int64_t(i) * width;
      T* out = static_cast<T*>(dst) + int64_t(rows[i]) * width;
      const float w = weights[i];
      for (int64_t c = 0; c < width; ++c) weighted[size_t(c)] = rd<T>(to_f(in[c]) * w);
      for (int64_t c = 0; c < width; ++c) out[c] = from_f<T>(to_f(out[c]) + weighted[size_t(c)]);
    }
  });
}

}  // namespace actcap::ops::cpu
