// Mixture-of-experts row movement: gathering one expert's rows and adding its weighted output back.
#include <cstring>
#include <vector>

#include "ops/cpu/kernels.h"

namespace actcap::ops::cpu {

void gather_rows(const float* src, int64_t width, std::span<const int32_t> rows, float* dst) {
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(dst + int64_t(i) * width, src + int64_t(rows[i]) * width, sizeof(float) * size_t(width));
}

void scatter_add_rows(const float* src, int64_t width, std::span<const int32_t> rows, std::span<const float> weights,
                      float* dst) {
  // The product is stored before it is added, as HF's two operations round twice: one expression could be
  // contracted into a fused multiply-add, which rounds once.
  std::vector<float> weighted(static_cast<size_t>(width));
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* in = src + int64_t(i) * width;
    float* out = dst + int64_t(rows[i]) * width;
    const float w = weights[i];
    for (int64_t c = 0; c < width; ++c) weighted[size_t(c)] = in[c] * w;
    for (int64_t c = 0; c < width; ++c) out[c] += weighted[size_t(c)];
  }
}

}  // namespace actcap::ops::cpu
