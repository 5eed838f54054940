#pragma once
// Small numeric arrays read from the files other tools write (numpy's .npy, torch.save's .pt), widened to float64
// (exact for every float dtype, and for integers up to 2^53): rotation matrices and permutations.
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace actcap {

struct LoadedArray {
  DType dtype = DType::F64;  // as stored
  Shape shape;
  std::vector<double> values;  // row-major
};

// n elements of `dtype` (any but BOOL) widened to float64.
std::vector<double> widen_to_f64(const void* data, DType dtype, size_t n);

// A .npy file (version 1-3, little-endian or byte-order-free numeric descr, C or Fortran order). Throws
// actcap::Error naming the file.
LoadedArray read_npy(const std::string& path);

// The tensors of a torch.save file (the zip format of torch >= 1.6), read without Python by an unpickler that,
// like torch.load(weights_only=True), knows only tensors, dicts, lists, tuples and plain values: a bare tensor
// comes back named "", a dict's tensors under their keys (nested containers are refused). Throws actcap::Error
// naming the file.
std::vector<std::pair<std::string, LoadedArray>> read_torch_tensors(const std::string& path);

}  // namespace actcap
