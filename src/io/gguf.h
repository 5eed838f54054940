#pragma once
// GGUF (versions 2 and 3, little-endian), the file format of llama.cpp: a header (magic "GGUF", version, tensor
// count, metadata count), typed metadata key/values, tensor infos (name, dims, ggml type, offset), padding to
// `general.alignment` (default 32), then the tensor data, each tensor at an aligned offset.
// Only F32 tensors are read and written whole (what control vectors use); other tensor types are refused by name.
// The reader holds the whole file's tensors in memory: it is meant for small files such as control vectors.
// Big files of any tensor type are written by streaming their data after encode_header().
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace actcap::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8,
  ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view type_name(ValueType type);  // "uint32", "string", ...

struct Value;
// Arrays hold scalars or strings of one type; arrays of arrays are refused (llama.cpp's reader refuses them too).
struct Array {
  ValueType element_type = ValueType::UINT8;
  std::vector<Value> items;
};

// One metadata value with its exact GGUF type (a uint32 stays a uint32 through a round trip).
struct Value {
  ValueType type = ValueType::UINT32;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  static Value unsigned_int(ValueType type, uint64_t value);  // UINT8, UINT16, UINT32, UINT64 (range checked)
  static Value signed_int(ValueType type, int64_t value);     // INT8, INT16, INT32, INT64 (range checked)
  static Value floating(ValueType type, double value);        // FLOAT32 (stored rounded to float), FLOAT64
  static Value boolean(bool value);
  static Value string(std::string value);
  static Value array(ValueType element_type, std::vector<Value> items);  // each item of element_type

  // Typed access; throws actcap::Error when the value holds another kind.
  uint64_t as_unsigned() const;
  int64_t as_signed() const;
  double as_float() const;
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;
};

// An F32 tensor; `ne` in ggml's order: ne[0] is the contiguous (innermost) dimension.
struct F32Tensor {
  std::string name;
  std::vector<uint64_t> ne;
  std::vector<float> data;  // product(ne) values
};

struct File {
  uint32_t version = 3;
  std::vector<std::pair<std::string, Value>> metadata;  // in file order; keys unique
  std::vector<F32Tensor> tensors;                       // in file order; names unique

  const Value* find(std::string_view key) const;        // null if absent
  const F32Tensor* tensor(std::string_view name) const;  // null if absent
  uint64_t alignment() const;  // general.alignment (a uint32 power of two) or 32
};

// Reads and checks the whole file: every count, length and offset against the file's size, tensor data inside
// the data section, aligned and not overlapping, names and keys unique. Throws actcap::Error, one line naming
// the file, for anything truncated, malformed or unsupported (a non-F32 tensor, a big-endian file).
File read(const std::string& path);

// Writes version 3 atomically (temporary name, then rename). Throws actcap::Error for an inconsistent `file`
// (duplicate names, data size not matching ne, a bad general.alignment) before anything is written.
void write(const std::string& path, const File& file);

// ggml_type values of the tensor types the writers here produce.
constexpr uint32_t kGgmlF32 = 0, kGgmlBF16 = 30;

// A tensor whose data the caller writes itself, after the header.
struct TensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ggml's order
  uint32_t ggml_type = kGgmlF32;
  uint64_t bytes = 0;        // of its data, unpadded
};

// The bytes of a version 3 file before its data section: header, metadata, tensor infos and the padding to
// general.alignment. The data section that follows is each tensor's bytes in this order, each padded with zeros
// to the alignment (`padded(bytes, alignment)`). Throws actcap::Error naming `path` for duplicate names or keys,
// a bad dimension count or general.alignment.
std::string encode_header(const std::string& path, const std::vector<std::pair<std::string, Value>>& metadata,
                          const std::vector<TensorInfo>& tensors);
uint64_t padded(uint64_t bytes, uint64_t alignment);

}  // namespace actcap::gguf
