#pragma once
// The .npy format (numpy/lib/format.py): magic "\x93NUMPY", version, header length, a Python dict literal
// {'descr': ..., 'fortran_order': False, 'shape': (...), } padded with spaces and a newline so that the data
// starts at a multiple of 64 bytes (numpy's ARRAY_ALIGN), then the C-order data. Headers are byte-identical to
// numpy 1.23+'s np.save.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/atomic_file.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace actcap {

// The magic + padded header dict (descr e.g. "<f4" or "|O"). Version 1.0, or 2.0 for a header over 65535 bytes.
std::string npy_header(std::string_view descr, const Shape& shape);

// Writes a numeric array atomically. dtype must have a numpy equivalent (not BF16: convert to F32 first).
void write_npy(const std::string& path, DType dtype, const Shape& shape, const void* data);

// Streams a numeric array: the header first, then the data in as many pieces as the caller likes.
class NpyWriter {
 public:
  NpyWriter(std::string path, DType dtype, Shape shape);
  void append(const void* data, size_t bytes);  // throws if more than the shape holds
  void commit();                                 // throws unless exactly the shape's bytes were appended
  uint64_t expected_bytes() const { return expected_; }

 private:
  std::unique_ptr<AtomicFile> file_;
  uint64_t expected_ = 0, written_ = 0;
};

}  // namespace actcap
