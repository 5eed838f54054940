#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"

namespace actcap::gguf {
namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

// ggml_type names, for a clear refusal of the types we do not read.
std::string ggml_type_name(uint32_t type) {
  static const char* const names[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1",
                                      "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K",
                                      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",
                                      "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16"};
  if (type < std::size(names)) return names[type];
  return "type " + std::to_string(type);
}

size_t scalar_size(ValueType type) {
  switch (type) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;  // at least its length
    case ValueType::ARRAY: return 12;  // at least its element type and count
  }
  return 0;
}

bool is_unsigned(ValueType t) {
  return t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 || t == ValueType::UINT64;
}
bool is_signed(ValueType t) {
  return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 || t == ValueType::INT64;
}
bool is_known(uint32_t t) { return t <= uint32_t(ValueType::FLOAT64); }

const Value* find_key(const std::vector<std::pair<std::string, Value>>& metadata, std::string_view key) {
  for (const auto& [name, value] : metadata)
    if (name == key) return &value;
  return nullptr;
}

uint64_t align_up(uint64_t offset, uint64_t alignment) { return (offset + alignment - 1) / alignment * alignment; }

uint64_t alignment_of(const Value* value, const std::string& where) {
  if (!value) return kDefaultAlignment;
  if (value->type != ValueType::UINT32) fail("{}: general.alignment is a {}, not a uint32", where, type_name(value->type));
  const uint64_t alignment = value->as_unsigned();
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    fail("{}: general.alignment {} is not a power of two", where, alignment);
  return alignment;
}

// Number of elements of `ne`, or nullopt when it overflows int64 (as ggml counts).
std::optional<uint64_t> element_count(const std::vector<uint64_t>& ne) {
  uint64_t n = 1;
  for (uint64_t d : ne) {
    if (d > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
    if (d != 0 && n > uint64_t(std::numeric_limits<int64_t>::max()) / d) return std::nullopt;
    n *= d;
  }
  return n;
}

class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& path) : data_(data), size_(size), path_(path) {}
  uint64_t position() const { return position_; }
  uint64_t remaining() const { return size_ - position_; }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, data_ + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }
  std::string string(const char* what) {
    const uint64_t length = read<uint64_t>(what);
    need(length, what);
    std::string text(reinterpret_cast<const char*>(data_ + position_), length);
    position_ += length;
    return text;
  }
  // A count of items that each take at least `min_item_bytes`: more than the rest of the file could hold is
  // refused before anything is allocated for them.
  uint64_t count(const char* what, uint64_t min_item_bytes) {
    const uint64_t n = read<uint64_t>(what);
    if (n > remaining() / min_item_bytes)
      fail("{}: {} {} cannot fit in the {} bytes left of the file (truncated or corrupt)", path_, what, n, remaining());
    return n;
  }

 private:
  void need(uint64_t n, const char* what) {
    if (n > remaining())
      fail("{}: truncated: {} needs {} bytes at offset {}, the file has {}", path_, what, n, position_, size_);
  }
  const uint8_t* data_;
  uint64_t size_, position_ = 0;
  const std::string& path_;
};

Value read_scalar(Cursor& in, ValueType type, const std::string& path, const std::string& key) {
  switch (type) {
    case ValueType::UINT8: return Value::unsigned_int(type, in.read<uint8_t>("a uint8 value"));
    case ValueType::UINT16: return Value::unsigned_int(type, in.read<uint16_t>("a uint16 value"));
    case ValueType::UINT32: return Value::unsigned_int(type, in.read<uint32_t>("a uint32 value"));
    case ValueType::UINT64: return Value::unsigned_int(type, in.read<uint64_t>("a uint64 value"));
    case ValueType::INT8: return Value::signed_int(type, in.read<int8_t>("an int8 value"));
    case ValueType::INT16: return Value::signed_int(type, in.read<int16_t>("an int16 value"));
    case ValueType::INT32: return Value::signed_int(type, in.read<int32_t>("an int32 value"));
    case ValueType::INT64: return Value::signed_int(type, in.read<int64_t>("an int64 value"));
    case ValueType::FLOAT32: return Value::floating(type, in.read<float>("a float32 value"));
    case ValueType::FLOAT64: return Value::floating(type, in.read<double>("a float64 value"));
    case ValueType::BOOL: {
      const uint8_t b = in.read<uint8_t>("a bool value");
      if (b > 1) fail("{}: metadata {}: bool value {} is neither 0 nor 1", path, key, b);
      return Value::boolean(b == 1);
    }
    case ValueType::STRING: return Value::string(in.string("a string value"));
    case ValueType::ARRAY: break;
  }
  fail("{}: metadata {}: unexpected value type {}", path, key, uint32_t(type));
}

Value read_value(Cursor& in, const std::string& path, const std::string& key) {
  const uint32_t type = in.read<uint32_t>("a value type");
  if (!is_known(type)) fail("{}: metadata {}: unknown value type {}", path, key, type);
  if (ValueType(type) != ValueType::ARRAY) return read_scalar(in, ValueType(type), path, key);
  const uint32_t element = in.read<uint32_t>("an array's element type");
  if (!is_known(element)) fail("{}: metadata {}: unknown array element type {}", path, key, element);
  if (ValueType(element) == ValueType::ARRAY) fail("{}: metadata {}: arrays of arrays are not supported", path, key);
  const uint64_t n = in.count("array length", scalar_size(ValueType(element)));
  std::vector<Value> items;
  items.reserve(n);
  for (uint64_t i = 0; i < n; ++i) items.push_back(read_scalar(in, ValueType(element), path, key));
  return Value::array(ValueType(element), std::move(items));
}

class Writer {
 public:
  std::string bytes;
  template <class T>
  void put(T value) {
    bytes.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void string(const std::string& text) {
    put<uint64_t>(text.size());
    bytes += text;
  }
  void scalar(const Value& value) {
    switch (value.type) {
      case ValueType::UINT8: put<uint8_t>(uint8_t(value.as_unsigned())); break;
      case ValueType::UINT16: put<uint16_t>(uint16_t(value.as_unsigned())); break;
      case ValueType::UINT32: put<uint32_t>(uint32_t(value.as_unsigned())); break;
      case ValueType::UINT64: put<uint64_t>(value.as_unsigned()); break;
      case ValueType::INT8: put<int8_t>(int8_t(value.as_signed())); break;
      case ValueType::INT16: put<int16_t>(int16_t(value.as_signed())); break;
      case ValueType::INT32: put<int32_t>(int32_t(value.as_signed())); break;
      case ValueType::INT64: put<int64_t>(value.as_signed()); break;
      case ValueType::FLOAT32: put<float>(float(value.as_float())); break;
      case ValueType::FLOAT64: put<double>(value.as_float()); break;
      case ValueType::BOOL: put<uint8_t>(value.as_bool() ? 1 : 0); break;
      case ValueType::STRING: string(value.as_string()); break;
      case ValueType::ARRAY: {
        const Array& array = value.as_array();
        put<uint32_t>(uint32_t(array.element_type));
        put<uint64_t>(array.items.size());
        for (const Value& item : array.items) scalar(item);
        break;
      }
    }
  }
  void pad_to(uint64_t alignment) { bytes.resize(align_up(bytes.size(), alignment), '\0'); }
};

}  // namespace

std::string_view type_name(ValueType type) {
  static const char* const names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32",  "float32",
                                      "bool",  "string", "array", "uint64", "int64",  "float64"};
  return is_known(uint32_t(type)) ? names[uint32_t(type)] : "unknown";
}

Value Value::unsigned_int(ValueType type, uint64_t value) {
  if (!is_unsigned(type)) fail("GGUF: {} is not an unsigned integer type", type_name(type));
  const uint64_t max = type == ValueType::UINT64 ? ~uint64_t(0) : (uint64_t(1) << (8 * scalar_size(type))) - 1;
  if (value > max) fail("GGUF: {} does not fit in a {}", value, type_name(type));
  return Value{type, value};
}

Value Value::signed_int(ValueType type, int64_t value) {
  if (!is_signed(type)) fail("GGUF: {} is not a signed integer type", type_name(type));
  if (type != ValueType::INT64) {
    const int64_t max = (int64_t(1) << (8 * scalar_size(type) - 1)) - 1;
    if (value > max || value < -max - 1) fail("GGUF: {} does not fit in an {}", value, type_name(type));
  }
  return Value{type, value};
}

Value Value::floating(ValueType type, double value) {
  if (type == ValueType::FLOAT32) return Value{type, double(float(value))};
  if (type != ValueType::FLOAT64) fail("GGUF: {} is not a floating-point type", type_name(type));
  return Value{type, value};
}

Value Value::boolean(bool value) { return Value{ValueType::BOOL, value}; }
Value Value::string(std::string value) { return Value{ValueType::STRING, std::move(value)}; }

Value Value::array(ValueType element_type, std::vector<Value> items) {
  if (element_type == ValueType::ARRAY) fail("GGUF: arrays of arrays are not supported");
  for (const Value& item : items)
    if (item.type != element_type)
      fail("GGUF: an array of {} holds a {}", type_name(element_type), type_name(item.type));
  return Value{ValueType::ARRAY, Array{element_type, std::move(items)}};
}

namespace {
template <class T>
const T& held(const Value& value, const char* wanted) {
  if (const T* v = std::get_if<T>(&value.data)) return *v;
  fail("GGUF: a {} value is not {}", type_name(value.type), wanted);
}
}  // namespace

uint64_t Value::as_unsigned() const { return held<uint64_t>(*this, "an unsigned integer"); }
int64_t Value::as_signed() const { return held<int64_t>(*this, "a signed integer"); }
double Value::as_float() const { return held<double>(*this, "a floating-point number"); }
bool Value::as_bool() const { return held<bool>(*this, "a bool"); }
const std::string& Value::as_string() const { return held<std::string>(*this, "a string"); }
const Array& Value::as_array() const { return held<Array>(*this, "an array"); }

const Value* File::find(std::string_view key) const { return find_key(metadata, key); }

const F32Tensor* File::tensor(std::string_view name) const {
  for (const F32Tensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

uint64_t File::alignment() const { return alignment_of(find("general.alignment"), "GGUF"); }

File read(const std::string& path) {
  const MappedFile mapped(path);
  Cursor in(mapped.data(), mapped.size(), path);
  if (mapped.size() < 4 || std::memcmp(mapped.data(), kMagic, 4) != 0) fail("{}: not a GGUF file (bad magic)", path);
  in.read<uint32_t>("the magic");
  File file;
  file.version = in.read<uint32_t>("the version");
  if (file.version != 2 && file.version != 3)
    fail("{}: unsupported GGUF version {} (2 and 3 little-endian are supported)", path, file.version);
  // A tensor info takes at least 32 bytes (name length, 1 dim, type, offset); a key/value at least 13.
  const uint64_t tensor_count = in.read<uint64_t>("the tensor count");
  const uint64_t kv_count = in.count("metadata count", 13);
  if (tensor_count > in.remaining() / 32)
    fail("{}: tensor count {} cannot fit in the {} bytes left of the file (truncated or corrupt)", path, tensor_count,
         in.remaining());

  std::set<std::string> keys;
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key = in.string("a metadata key");
    if (!keys.insert(key).second) fail("{}: metadata key {} appears twice", path, key);
    Value value = read_value(in, path, key);
    file.metadata.emplace_back(std::move(key), std::move(value));
  }
  const uint64_t alignment = alignment_of(file.find("general.alignment"), path);

  struct Info {
    uint64_t offset, bytes;
    size_t index;
  };
  std::vector<Info> infos;
  std::set<std::string> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    F32Tensor tensor;
    tensor.name = in.string("a tensor name");
    if (!names.insert(tensor.name).second) fail("{}: tensor {} appears twice", path, tensor.name);
    const uint32_t n_dims = in.read<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) fail("{}: tensor {} has {} dimensions (1 to {})", path, tensor.name, n_dims, kMaxDims);
    for (uint32_t d = 0; d < n_dims; ++d) tensor.ne.push_back(in.read<uint64_t>("a tensor dimension"));
    const uint32_t type = in.read<uint32_t>("a tensor type");
    if (type != kGgmlF32)
      fail("{}: tensor {} has type {}: only F32 tensors are supported", path, tensor.name, ggml_type_name(type));
    const uint64_t offset = in.read<uint64_t>("a tensor offset");
    const std::optional<uint64_t> n = element_count(tensor.ne);
    if (!n || *n > mapped.size() / sizeof(float))
      fail("{}: tensor {} has more elements than the file could hold", path, tensor.name);
    if (offset % alignment != 0)
      fail("{}: tensor {} at offset {} is not aligned to {} bytes", path, tensor.name, offset, alignment);
    infos.push_back({offset, *n * sizeof(float), size_t(i)});
    file.tensors.push_back(std::move(tensor));
  }

  const uint64_t data_start = align_up(in.position(), alignment);
  const uint64_t data_size = data_start <= mapped.size() ? mapped.size() - data_start : 0;
  for (const Info& info : infos)
    if (info.offset > data_size || info.bytes > data_size - info.offset)
      fail("{}: tensor {} ({} bytes at offset {}) lies outside the {}-byte data section (truncated?)", path,
           file.tensors[info.index].name, info.bytes, info.offset, data_size);
  std::sort(infos.begin(), infos.end(), [](const Info& a, const Info& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < infos.size(); ++i)
    if (infos[i - 1].offset + infos[i - 1].bytes > infos[i].offset)
      fail("{}: tensors {} and {} overlap", path, file.tensors[infos[i - 1].index].name, file.tensors[infos[i].index].name);
  for (const Info& info : infos) {
    std::vector<float>& data = file.tensors[info.index].data;
    data.resize(info.bytes / sizeof(float));
    std::memcpy(data.data(), mapped.data() + data_start + info.offset, info.bytes);
  }
  return file;
}

uint64_t padded(uint64_t bytes, uint64_t alignment) { return align_up(bytes, alignment); }

std::string encode_header(const std::string& path, const std::vector<std::pair<std::string, Value>>& metadata,
                          const std::vector<TensorInfo>& tensors) {
  const uint64_t alignment = alignment_of(find_key(metadata, "general.alignment"), path);
  Writer out;
  out.bytes.append(kMagic, 4);
  out.put<uint32_t>(3);
  out.put<uint64_t>(tensors.size());
  out.put<uint64_t>(metadata.size());
  std::set<std::string> keys, names;
  for (const auto& [key, value] : metadata) {
    if (!keys.insert(key).second) fail("{}: metadata key {} given twice", path, key);
    out.string(key);
    out.put<uint32_t>(uint32_t(value.type));
    out.scalar(value);
  }
  uint64_t offset = 0;
  for (const TensorInfo& tensor : tensors) {
    if (!names.insert(tensor.name).second) fail("{}: tensor {} given twice", path, tensor.name);
    if (tensor.ne.empty() || tensor.ne.size() > kMaxDims)
      fail("{}: tensor {} has {} dimensions (1 to {})", path, tensor.name, tensor.ne.size(), kMaxDims);
    out.string(tensor.name);
    out.put<uint32_t>(uint32_t(tensor.ne.size()));
    for (uint64_t d : tensor.ne) out.put<uint64_t>(d);
    out.put<uint32_t>(tensor.ggml_type);
    out.put<uint64_t>(offset);
    offset = align_up(offset + tensor.bytes, alignment);
  }
  out.pad_to(alignment);
  return std::move(out.bytes);
}

void write(const std::string& path, const File& file) {
  std::vector<TensorInfo> infos;
  for (const F32Tensor& tensor : file.tensors) {
    const std::optional<uint64_t> n = element_count(tensor.ne);
    if (!tensor.ne.empty() && (!n || *n != tensor.data.size()))
      fail("{}: tensor {} has {} values, its dimensions say otherwise", path, tensor.name, tensor.data.size());
    infos.push_back({tensor.name, tensor.ne, kGgmlF32, tensor.data.size() * sizeof(float)});
  }
  std::string bytes = encode_header(path, file.metadata, infos);
  // Each tensor's data is padded to the alignment, the last one too (as llama.cpp's writer does).
  const uint64_t alignment = file.alignment();
  for (const F32Tensor& tensor : file.tensors) {
    bytes.append(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size() * sizeof(float));
    bytes.resize(align_up(bytes.size(), alignment), '\0');
  }
  write_file_atomic(path, bytes);
}

}  // namespace actcap::gguf
