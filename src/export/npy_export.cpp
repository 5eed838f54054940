#include "export/npy_export.h"

#include <algorithm>

#include "core/error.h"
#include "export/site_arrays.h"
#include "io/npy.h"

namespace actcap {

DType npy_export_dtype(DType stored) { return stored == DType::BF16 ? DType::F32 : stored; }

std::string npy_file_name(const std::string& name) {
  std::string file = name;
  std::replace(file.begin(), file.end(), '/', '_');
  return file + ".npy";
}

void write_npy_arrays(const std::vector<NpyArray>& arrays) {
  for (const NpyArray& array : arrays) {
    if (array.pieces.empty()) fail("{}: nothing to export", array.file);
    int64_t total = 0;
    for (const TensorView& piece : array.pieces) {
      if (piece.dtype != array.pieces[0].dtype)
        fail("{}: pieces of different dtypes ({} and {})", array.file, dtype_name(array.pieces[0].dtype),
             dtype_name(piece.dtype));
      total += checked_num_elements(piece.shape, array.file);
    }
    if (total != checked_num_elements(array.shape, array.file))
      fail("{}: shape {} does not hold the {} exported elements", array.file, shape_string(array.shape), total);
    numpy_descr(npy_export_dtype(array.pieces[0].dtype));  // throws for a dtype numpy lacks
  }
  constexpr size_t kBlock = 1 << 16;  // elements converted at a time
  std::vector<float> converted;
  for (const NpyArray& array : arrays) {
    const DType stored = array.pieces[0].dtype;
    NpyWriter writer(array.file, npy_export_dtype(stored), array.shape);
    for (const TensorView& piece : array.pieces) {
      if (stored != DType::BF16) {
        writer.append(piece.data, piece.nbytes());
        continue;
      }
      const uint16_t* src = static_cast<const uint16_t*>(piece.data);
      for (int64_t begin = 0; begin < piece.numel(); begin += int64_t(kBlock)) {
        const size_t n = size_t(std::min<int64_t>(int64_t(kBlock), piece.numel() - begin));
        converted.resize(n);
        convert_to_f32(src + begin, DType::BF16, converted.data(), n);
        writer.append(converted.data(), n * sizeof(float));
      }
    }
    writer.commit();
  }
}

}  // namespace actcap
