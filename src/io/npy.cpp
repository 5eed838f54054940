#include "io/npy.h"

#include <algorithm>

#include "core/error.h"

namespace actcap {

namespace {
constexpr size_t kArrayAlign = 64;
constexpr size_t kGrowthAxisMaxDigits = 21;
constexpr std::string_view kMagic = "\x93NUMPY";
}  // namespace

std::string npy_header(std::string_view descr, const Shape& shape) {
  // repr() of a tuple: "()", "(3,)", "(2, 3)".
  std::string shape_repr = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) fail("npy: negative dimension in shape {}", shape_string(shape));
    if (i) shape_repr += ", ";
    shape_repr += std::to_string(shape[i]);
  }
  if (shape.size() == 1) shape_repr += ",";
  shape_repr += ")";
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape_repr);
  // Room for the first axis to grow in place, exactly as numpy >= 1.23 writes it (so our headers are numpy's).
  if (!shape.empty()) {
    const size_t digits = std::to_string(shape[0]).size();
    dict.append(kGrowthAxisMaxDigits - std::min(kGrowthAxisMaxDigits, digits), ' ');
  }

  for (int version : {1, 2}) {
    size_t prefix = kMagic.size() + 2 + (version == 1 ? 2 : 4);
    size_t unpadded = prefix + dict.size() + 1;  // + '\n'
    size_t padding = kArrayAlign - unpadded % kArrayAlign;  // 1..64, as numpy's _wrap_header
    size_t header_len = dict.size() + padding + 1;
    if (version == 1 && header_len > 0xffff) continue;
    std::string out(kMagic);
    out.push_back(char(version));
    out.push_back(0);
    for (int i = 0; i < (version == 1 ? 2 : 4); ++i) out.push_back(char((header_len >> (8 * i)) & 0xff));
    out += dict;
    out.append(padding, ' ');
    out.push_back('\n');
    return out;
  }
  fail("npy: header for shape {} is too large", shape_string(shape));
}

NpyWriter::NpyWriter(std::string path, DType dtype, Shape shape) {
  if (dtype == DType::BF16) fail("{}: numpy has no bfloat16; convert to float32 first", path);
  std::string header = npy_header(numpy_descr(dtype), shape);
  expected_ = uint64_t(num_elements(shape)) * dtype_size(dtype);
  file_ = std::make_unique<AtomicFile>(std::move(path));
  file_->write(header);
}

void NpyWriter::append(const void* data, size_t bytes) {
  if (written_ + bytes > expected_)
    fail("{}: {} bytes appended to an array of {} bytes", file_->path(), written_ + bytes, expected_);
  file_->write(data, bytes);
  written_ += bytes;
}

void NpyWriter::commit() {
  if (written_ != expected_)
    fail("{}: {} of the array's {} bytes were written", file_->path(), written_, expected_);
  file_->commit();
}

void write_npy(const std::string& path, DType dtype, const Shape& shape, const void* data) {
  NpyWriter writer(path, dtype, shape);
  writer.append(data, size_t(writer.expected_bytes()));
  writer.commit();
}

}  // namespace actcap
