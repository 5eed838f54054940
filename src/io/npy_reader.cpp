// read_npy (loaded_array.h).
#include <algorithm>
#include <cstring>
#include <regex>

#include "core/error.h"
#include "io/loaded_array.h"
#include "io/safetensors.h"

namespace actcap {

LoadedArray read_npy(const std::string& path) {
  const MappedFile file(path);
  const uint8_t* p = file.data();
  if (file.size() < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) fail("{}: not a .npy file (no \\x93NUMPY magic)", path);
  const int version = p[6];
  const size_t length_bytes = version == 1 ? 2 : 4;
  if (version < 1 || version > 3) fail("{}: .npy version {} is not supported", path, version);
  size_t header_len = 0;
  for (size_t i = 0; i < length_bytes; ++i) header_len |= size_t(p[8 + i]) << (8 * i);
  const size_t data_offset = 8 + length_bytes + header_len;
  if (data_offset > file.size()) fail("{}: .npy header runs past the end of the file", path);
  const std::string header(reinterpret_cast<const char*>(p + 8 + length_bytes), header_len);

  static const std::regex descr_re(R"('descr':\s*'([<|=])([fiub])(\d+)')"), order_re(R"('fortran_order':\s*(True|False))");
  static const std::regex shape_re(R"('shape':\s*\(([^)]*)\))");
  std::smatch descr, order, shape;
  if (!std::regex_search(header, descr, descr_re) || !std::regex_search(header, order, order_re) ||
      !std::regex_search(header, shape, shape_re))
    fail("{}: .npy header is not a little-endian numeric array's: {}", path, header.substr(0, header.find('}') + 1));
  const std::string kind = descr[2].str() + descr[3].str();
  static const std::vector<std::pair<std::string, DType>> kinds = {
      {"f8", DType::F64}, {"f4", DType::F32}, {"f2", DType::F16}, {"i8", DType::I64},
      {"i4", DType::I32}, {"i2", DType::I16}, {"i1", DType::I8},  {"u1", DType::U8}};
  LoadedArray array;
  auto found = std::find_if(kinds.begin(), kinds.end(), [&](const auto& k) { return k.first == kind; });
  if (found == kinds.end()) fail("{}: .npy dtype '{}' is not supported (float or signed integer)", path, kind);
  array.dtype = found->second;
  const std::string dims = shape[1].str();
  static const std::regex dim_re(R"(\d+)");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), dim_re); it != std::sregex_iterator(); ++it)
    array.shape.push_back(std::stoll(it->str()));
  const size_t n = size_t(num_elements(array.shape));
  if (data_offset + n * dtype_size(array.dtype) > file.size())
    fail("{}: .npy data holds fewer than the {} elements of shape {}", path, n, shape_string(array.shape));
  array.values = widen_to_f64(p + data_offset, array.dtype, n);
  if (order[1] == "True" && array.shape.size() == 2) {  // column-major: transpose into row-major
    std::vector<double> row_major(n);
    const int64_t rows = array.shape[0], cols = array.shape[1];
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) row_major[size_t(i * cols + j)] = array.values[size_t(j * rows + i)];
    array.values = std::move(row_major);
  } else if (order[1] == "True" && array.shape.size() > 2) {
    fail("{}: a Fortran-order array of rank {} is not supported", path, array.shape.size());
  }
  return array;
}

}  // namespace actcap
