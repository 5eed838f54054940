#pragma once
// The exact-integer export: each layer's floats become round(x * 10^s) (export/scaled_integers.h), written as
// one .npy per layer (a layer is one site's array, export/site_arrays.h) in one of three encodings:
//   object  dtype object array of Python ints (np.save's format; numpy.load(..., allow_pickle=True))
//   int64   '<i8' array, pickle-free; an error names the first layer whose values do not fit
//   fixed   '|u1' array of shape [..., W]: each value as W bytes of little-endian two's complement, W the
//           fewest bytes that hold every value of the layer (recorded per layer in the metadata);
//           Python: int.from_bytes(a[idx].tobytes(), "little", signed=True)
// Layers stream through in blocks, so memory stays bounded by the block size, not the layer.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "export/scaled_integers.h"

namespace actcap {

enum class IntegerFormat { Object, Int64, Fixed };
IntegerFormat parse_integer_format(std::string_view name);  // "object" | "int64" | "fixed"
std::string_view integer_format_name(IntegerFormat format);

struct IntegerLayerSummary {
  std::string layer, file;
  Shape shape;          // as written (the values' shape; fixed adds the byte axis in the file only)
  DType source_dtype = DType::F32;
  int64_t count = 0;
  IntegerFormat format = IntegerFormat::Object;
  size_t width_bytes = 0;  // fixed: bytes per value
  double sample_original = 0;
  std::string sample_converted;  // decimal text (exact, whatever its size)
};

// A layer's values: `pieces` (F32, F16 or BF16) concatenated in C order, written with `shape` (the same count).
// Checks the layer, then converts the pieces and writes DIR/<layer>.npy atomically. NaN or +-Inf is an
// actcap::Error naming the layer and the element's position, as is an int64 value out of range.
IntegerLayerSummary write_integer_layer(const std::string& dir, const std::string& layer,
                                        const std::vector<TensorView>& pieces, const Shape& shape,
                                        const DecimalScaler& scaler, IntegerFormat format);

std::string torch_dtype_name(DType dtype);  // "torch.float32", "torch.bfloat16", "torch.float16"

// The index {0, 3, 17} of flat index `flat` in `shape` (C order), and the same as text "[0, 3, 17]".
std::vector<int64_t> unravel_index(const Shape& shape, int64_t flat);
std::string position_string(const Shape& shape, int64_t flat);

}  // namespace actcap
