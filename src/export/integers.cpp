#include "export/integers.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "export/object_npy.h"
#include "export/site_arrays.h"
#include "io/npy.h"

namespace actcap {

namespace {

constexpr int64_t kBlock = int64_t(1) << 20;  // values converted and written per step
constexpr int64_t kGrain = int64_t(1) << 14;  // values per parallel chunk

// Calls visit(block) for the layer's values in blocks of at most kBlock, as fp32 (exact for F16/BF16), each
// checked for NaN/Inf (reported with its position in `shape`).
template <typename Visit>
void for_each_block(const std::vector<TensorView>& pieces, const std::string& layer, const Shape& shape, Visit visit) {
  std::vector<float> block;
  int64_t offset = 0;  // flat index of the piece's first value in the layer
  for (const TensorView& piece : pieces) {
    for (int64_t begin = 0; begin < piece.numel(); begin += kBlock) {
      const int64_t n = std::min(piece.numel() - begin, kBlock);
      block.resize(size_t(n));
      convert_to_f32(static_cast<const uint8_t*>(piece.data) + size_t(begin) * dtype_size(piece.dtype), piece.dtype,
                     block.data(), block.size());
      const int64_t bad = first_non_finite(block.data(), n);
      if (bad >= 0) {
        const int64_t at = offset + begin + bad;
        const float x = block[size_t(bad)];
        fail("layer {}: element {} (position {}) is {}", layer, at, position_string(shape, at),
             x != x ? "NaN" : (x > 0 ? "+Inf" : "-Inf"));
      }
      visit(block);
    }
    offset += piece.numel();
  }
}

// The layer's largest and smallest values: rounding is monotone, so their integers bound every other.
std::pair<float, float> extremes(const std::vector<TensorView>& pieces, const std::string& layer, const Shape& shape) {
  float lo = 0, hi = 0;
  for_each_block(pieces, layer, shape, [&](const std::vector<float>& block) {
    for (float x : block) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  });
  return {lo, hi};
}

}  // namespace

IntegerFormat parse_integer_format(std::string_view name) {
  if (name == "object") return IntegerFormat::Object;
  if (name == "int64") return IntegerFormat::Int64;
  if (name == "fixed") return IntegerFormat::Fixed;
  fail("--format {}: expected object, int64 or fixed", name);
}

std::string_view integer_format_name(IntegerFormat format) {
  switch (format) {
    case IntegerFormat::Object: return "object";
    case IntegerFormat::Int64: return "int64";
    case IntegerFormat::Fixed: return "fixed";
  }
  return "";
}

std::string torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F16: return "torch.float16";
    case DType::BF16: return "torch.bfloat16";
    default: return "torch.float32";
  }
}

std::vector<int64_t> unravel_index(const Shape& shape, int64_t flat) {
  std::vector<int64_t> index(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    index[i] = shape[i] ? flat % shape[i] : 0;
    flat = shape[i] ? flat / shape[i] : 0;
  }
  return index;
}

std::string position_string(const Shape& shape, int64_t flat) { return shape_string(unravel_index(shape, flat)); }

namespace {

// Every value finite and, for int64, in range. Returns the bytes per value of the format (0 for object).
size_t check_integer_layer(const std::string& layer, const std::vector<TensorView>& pieces, const Shape& shape,
                           const DecimalScaler& scaler, IntegerFormat format) {
  int64_t count = 0;
  for (const TensorView& piece : pieces) {
    if (piece.dtype != DType::F32 && piece.dtype != DType::F16 && piece.dtype != DType::BF16)
      fail("layer {}: dtype {} is not a float the integer export converts", layer, dtype_name(piece.dtype));
    count += checked_num_elements(piece.shape, "layer " + layer);
  }
  if (checked_num_elements(shape, "layer " + layer) != count)
    fail("layer {}: shape {} does not hold {} values", layer, shape_string(shape), count);
  const auto [lo, hi] = extremes(pieces, layer, shape);
  if (format == IntegerFormat::Object) return 0;
  ScaledInteger low, high;
  scaler.convert(lo, low);
  scaler.convert(hi, high);
  if (format == IntegerFormat::Int64) {
    int64_t unused;
    for (const ScaledInteger* v : {&low, &high})
      if (!v->to_int64(&unused))
        fail("layer {}: the value {} does not fit in int64 at scale 10^{}; use --format fixed or object, "
             "or a larger --quantize", layer, v->decimal(), scaler.scale());
    return 8;
  }
  return std::max<size_t>({1, low.min_twos_complement_bytes(), high.min_twos_complement_bytes()});
}

}  // namespace

IntegerLayerSummary write_integer_layer(const std::string& dir, const std::string& layer,
                                        const std::vector<TensorView>& pieces, const Shape& shape,
                                        const DecimalScaler& scaler, IntegerFormat format) {
  IntegerLayerSummary summary;
  summary.layer = layer;
  summary.file = layer + ".npy";
  summary.shape = shape;
  summary.source_dtype = pieces.empty() ? DType::F32 : pieces[0].dtype;
  summary.format = format;
  summary.width_bytes = check_integer_layer(layer, pieces, shape, scaler, format);
  summary.count = num_elements(shape);
  const std::string path = (std::filesystem::path(dir) / summary.file).string();

  std::unique_ptr<ObjectNpyWriter> object_writer;
  std::unique_ptr<NpyWriter> numeric_writer;
  if (format == IntegerFormat::Object) {
    object_writer = std::make_unique<ObjectNpyWriter>(path, shape);
  } else if (format == IntegerFormat::Int64) {
    numeric_writer = std::make_unique<NpyWriter>(path, DType::I64, shape);
  } else {
    Shape bytes_shape = shape;
    bytes_shape.push_back(int64_t(summary.width_bytes));
    numeric_writer = std::make_unique<NpyWriter>(path, DType::U8, bytes_shape);
  }

  std::vector<std::string> pickled;
  std::string fixed;
  const size_t width = summary.width_bytes;
  bool first = true;
  for_each_block(pieces, layer, shape, [&](const std::vector<float>& block) {
    const int64_t n = int64_t(block.size());
    if (format == IntegerFormat::Object) {
      pickled.assign(size_t((n + kGrain - 1) / kGrain), std::string());
      ThreadPool::global().parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
        ScaledInteger value;
        std::string& out = pickled[size_t(b / kGrain)];
        out.reserve(size_t(e - b) * 16);
        for (int64_t i = b; i < e; ++i) {
          scaler.convert(block[size_t(i)], value);
          append_pickle_int(out, value);
        }
      });
      for (size_t c = 0; c < pickled.size(); ++c)
        object_writer->append(pickled[c], std::min(kGrain, n - int64_t(c) * kGrain));
    } else {
      fixed.resize(size_t(n) * width);
      ThreadPool::global().parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
        ScaledInteger value;
        for (int64_t i = b; i < e; ++i) {
          scaler.convert(block[size_t(i)], value);
          value.write_twos_complement_le(reinterpret_cast<uint8_t*>(fixed.data()) + size_t(i) * width, width);
        }
      });
      numeric_writer->append(fixed.data(), fixed.size());
    }
    if (first && n > 0) {
      ScaledInteger sample;
      scaler.convert(block[0], sample);
      summary.sample_original = double(block[0]);
      summary.sample_converted = sample.decimal();
      first = false;
    }
  });
  if (object_writer) object_writer->commit();
  if (numeric_writer) numeric_writer->commit();
  return summary;
}

}  // namespace actcap
