// Packing a column tile's weights into the panels the packed kernels read (layouts in gemm.h). Outputs past
// the tile's end and the pad of an odd K are zero, so the kernels never branch on them.
#include <algorithm>

#include "ops/cpu/gemm.h"

namespace actcap::ops::cpu {
namespace {

// Element (k, output o) of the weights as fp32, for both layouts.
template <class Stored, class Widen>
void for_each_weight(const Linear& layer, int64_t n0, int64_t n, Widen widen, auto&& store) {
  const auto* w = static_cast<const Stored*>(layer.weight);
  const int64_t K = layer.in, N = layer.out;
  if (layer.in_out_layout) {
    for (int64_t k = 0; k < K; ++k)
      for (int64_t o = 0; o < n; ++o) store(k, o, widen(w[k * N + n0 + o]));
  } else {
    for (int64_t o = 0; o < n; ++o)
      for (int64_t k = 0; k < K; ++k) store(k, o, widen(w[(n0 + o) * K + k]));
  }
}

}  // namespace

void pack_f32_panels(const Linear& layer, DType dtype, int64_t n0, int64_t n, std::vector<float>& packed) {
  const int64_t K = layer.in, panels = (n + PANEL - 1) / PANEL;
  packed.resize(size_t(panels * K * PANEL));
  if (n % PANEL) std::fill(packed.begin() + (panels - 1) * K * PANEL, packed.end(), 0.0f);
  auto store = [&](int64_t k, int64_t o, float v) { packed[size_t(((o / PANEL) * K + k) * PANEL + o % PANEL)] = v; };
  if (dtype == DType::F32) {
    for_each_weight<float>(
        layer, n0, n, [](float v) { return v; }, store);
  } else if (dtype == DType::BF16) {
    for_each_weight<uint16_t>(layer, n0, n, bf16_to_f32, store);
  } else {
    for_each_weight<uint16_t>(layer, n0, n, f16_to_f32, store);
  }
}

void pack_bf16_panels(const Linear& layer, int64_t n0, int64_t n, std::vector<uint16_t>& packed) {
  const int64_t K = layer.in, pairs = (layer.in + 1) / 2, panels = (n + PANEL - 1) / PANEL;
  packed.resize(size_t(panels * pairs * PANEL * 2));
  if (n % PANEL || K % 2) std::fill(packed.begin(), packed.end(), uint16_t(0));
  auto store = [&](int64_t k, int64_t o, uint16_t v) {
    packed[size_t((((o / PANEL) * pairs + k / 2) * PANEL + o % PANEL) * 2 + k % 2)] = v;
  };
  for_each_weight<uint16_t>(
      layer, n0, n, [](uint16_t v) { return v; }, store);
}

}  // namespace actcap::ops::cpu
