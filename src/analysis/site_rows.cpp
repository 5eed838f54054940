#include "analysis/site_rows.h"

#include <algorithm>
#include <span>

#include "capture/sites.h"
#include "core/error.h"

namespace actcap {

int position_axis(const std::string& site) { return is_token_row_site(site) ? 0 : 1; }

int64_t position_count(const TensorView& view, int axis) {
  if (int(view.shape.size()) <= axis) fail("a tensor of shape {} has no position axis {}", shape_string(view.shape), axis);
  return view.shape[size_t(axis)];
}

Shape row_shape(const TensorView& view, int axis) {
  Shape shape = view.shape;
  if (int(shape.size()) > axis) shape.erase(shape.begin() + axis);
  return shape;
}

void row_values(const TensorView& view, int axis, int64_t row, std::vector<double>& out) {
  const std::span<const int64_t> shape(view.shape);
  const int64_t rows = position_count(view, axis);
  const int64_t outer = num_elements(shape.first(size_t(axis))), inner = num_elements(shape.subspan(size_t(axis) + 1));
  out.resize(size_t(outer * inner));
  std::vector<float> piece(static_cast<size_t>(inner));
  const size_t element = dtype_size(view.dtype);
  for (int64_t o = 0; o < outer; ++o) {
    const char* first = static_cast<const char*>(view.data) + size_t((o * rows + row) * inner) * element;
    convert_to_f32(first, view.dtype, piece.data(), piece.size());
    std::copy(piece.begin(), piece.end(), out.begin() + o * inner);
  }
}

}  // namespace actcap
