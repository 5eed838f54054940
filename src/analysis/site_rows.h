#pragma once
// A stored site's rows, one per kept position: dim 0 of [T, ...] for every site but attention patterns, which the
// store keeps as HF returns them, [heads, T, T_keys], so that a position's row is [heads, T_keys].
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace actcap {

int position_axis(const std::string& site);  // 0, or 1 for attn.hook_pattern
int64_t position_count(const TensorView& view, int axis);
Shape row_shape(const TensorView& view, int axis);  // the shape without the position axis

// The values of position `row` (along `axis`) widened to double into `out`: exact for F32, F16 and BF16.
void row_values(const TensorView& view, int axis, int64_t row, std::vector<double>& out);

}  // namespace actcap
