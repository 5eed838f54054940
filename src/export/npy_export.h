#pragma once
// Plain numeric .npy files of captured activations, which numpy.load reads without allow_pickle. numpy has no
// bfloat16: BF16 values are written as float32 (exactly); F16 stays '<f2' and F32 '<f4'.
#include <string>
#include <vector>

#include "core/tensor.h"

namespace actcap {

// One output array: the pieces concatenated along dim 0 (same trailing dims), written as `shape`.
struct NpyArray {
  std::string file;                 // path of the .npy
  std::vector<TensorView> pieces;   // borrowed until write_npy_arrays returns
  Shape shape;                      // element count = the pieces' total
};

// The numpy dtype an array of `stored` values is written as (BF16 -> F32).
DType npy_export_dtype(DType stored);

// Checks every array (dtypes, element counts) before writing any, then writes each atomically, streaming the
// pieces (converting BF16 to F32 in blocks).
void write_npy_arrays(const std::vector<NpyArray>& arrays);

// The file name a site or layer gets: its name with any '/' replaced by '_', plus ".npy".
std::string npy_file_name(const std::string& name);

}  // namespace actcap
