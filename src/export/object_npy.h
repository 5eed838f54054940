#pragma once
// .npy files of Python ints with dtype object, byte-compatible with np.save: the npy header (descr '|O')
// followed by a protocol-3 pickle of the ndarray, rebuilt through numpy.core.multiarray._reconstruct (which
// numpy 2.x keeps importable, without a warning, for exactly these pickles) with its elements as a list of
// ints. numpy.load(path, allow_pickle=True) reads it in numpy 1.x and 2.x.
// Also: a reader for the .npy files the integer export writes (object, int64 and fixed-width byte arrays),
// which the hypercube export streams element by element.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/atomic_file.h"
#include "core/tensor.h"
#include "export/scaled_integers.h"
#include "io/safetensors.h"

namespace actcap {

// Appends the pickle opcode for one int exactly as CPython's pickler writes it (BININT1, BININT2, BININT,
// LONG1 or LONG4 with encode_long's minimal two's complement).
void append_pickle_int(std::string& out, const ScaledInteger& value);
void append_pickle_int(std::string& out, int64_t value);

// Streams an object .npy: elements arrive already pickled (append_pickle_int), in C order.
class ObjectNpyWriter {
 public:
  ObjectNpyWriter(std::string path, Shape shape);
  void append(std::string_view pickled_ints, int64_t count);
  void commit();  // throws unless exactly numel elements were appended

 private:
  AtomicFile file_;
  Shape shape_;
  int64_t expected_ = 0, written_ = 0;
  std::string suffix_;
};

// A parsed .npy header.
struct NpyHeader {
  std::string descr;  // "|O", "<i8", "|u1", ...
  Shape shape;
  size_t data_offset = 0;
};
NpyHeader parse_npy_header(const uint8_t* data, size_t size, const std::string& path);

// Reads the elements of an integer-export .npy in C order, each as its encoded bytes:
// object: the element's pickle opcode bytes; "<i8": 8 bytes; "|u1" fixed width [..., W]: W bytes.
class IntegerNpyReader {
 public:
  explicit IntegerNpyReader(const std::string& path);
  enum class Kind { Object, Int64, Fixed };
  Kind kind() const { return kind_; }
  const Shape& shape() const { return shape_; }   // the values' shape (without the fixed width axis)
  int64_t count() const { return count_; }
  size_t width() const { return width_; }         // bytes per element for Int64 (8) and Fixed
  // The next element's bytes; throws actcap::Error naming the file if it is malformed or exhausted.
  std::string_view next();
  // Checks that every element was read and the file ends where it should.
  void finish();

 private:
  MappedFile file_;
  Kind kind_ = Kind::Object;
  Shape shape_;
  int64_t count_ = 0, read_ = 0;
  size_t width_ = 0, pos_ = 0, end_ = 0;
};

}  // namespace actcap
