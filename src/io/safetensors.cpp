#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"

namespace actcap {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(errno));
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail("{}: cannot map: {}", path, std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

namespace {

// A shape dimension or data offset: a non-negative integer (512.5 or -1 are malformed, not rounded or wrapped).
uint64_t non_negative_integer(const nlohmann::json& v, const char* what) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > uint64_t(INT64_MAX))
    throw Error(fmt::format("{} holds {}, not a non-negative integer", what, v.dump()));
  return v.get<uint64_t>();
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
  const size_t size = file_->size();
  if (size < 8) fail("{}: not a safetensors file (only {} bytes)", path, size);
  uint64_t header_len = 0;
  std::memcpy(&header_len, file_->data(), 8);
  if (header_len > size - 8) fail("{}: malformed safetensors header: length {} exceeds file size {}", path, header_len, size);
  data_offset_ = 8 + header_len;
  const uint64_t data_size = size - data_offset_;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file_->data() + 8, file_->data() + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed safetensors header: {}", path, e.what());
  }
  if (!header.is_object()) fail("{}: malformed safetensors header: not a JSON object", path);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail("{}: malformed safetensors header: __metadata__ is not an object", path);
      for (auto& [k, v] : value.items()) {
        if (!v.is_string()) fail("{}: malformed safetensors header: metadata '{}' is not a string", path, k);
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    try {
      if (!value.is_object()) throw Error("not an object");
      SafetensorsEntry e;
      e.dtype = parse_dtype(value.at("dtype").get<std::string>());
      const auto& shape = value.at("shape");
      const auto& offsets = value.at("data_offsets");
      if (!shape.is_array()) throw Error("shape is not a list");
      for (const auto& d : shape) e.shape.push_back(int64_t(non_negative_integer(d, "shape")));
      if (!offsets.is_array() || offsets.size() != 2) throw Error("data_offsets must have two entries");
      e.begin = non_negative_integer(offsets[0], "data_offsets");
      e.end = non_negative_integer(offsets[1], "data_offsets");
      if (e.begin > e.end || e.end > data_size)
        throw Error(fmt::format("data_offsets [{}, {}] outside the data section of {} bytes", e.begin, e.end, data_size));
      // Checked products: a shape such as [2^62, 4, 1] must not wrap around to a small size.
      uint64_t expected = dtype_size(e.dtype);
      for (int64_t d : e.shape)
        if (__builtin_mul_overflow(expected, uint64_t(d), &expected))
          throw Error(fmt::format("shape {} is too large", shape_string(e.shape)));
      if (e.end - e.begin != expected)
        throw Error(fmt::format("{} bytes for {} {}, expected {}", e.end - e.begin, dtype_name(e.dtype),
                                shape_string(e.shape), expected));
      ranges.emplace_back(e.begin, e.end);
      entries_.emplace(name, std::move(e));
    } catch (const std::exception& ex) {
      fail("{}: malformed safetensors header for tensor '{}': {}", path, name, ex.what());
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second && ranges[i].first != ranges[i].second)
      fail("{}: malformed safetensors header: tensor data ranges overlap", path);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (auto& [name, _] : entries_) out.push_back(name);
  return out;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("{}: no tensor named '{}'", path(), name);
  return it->second;
}

TensorView SafetensorsFile::view(const std::string& name) const {
  const auto& e = entry(name);
  return TensorView{file_->data() + data_offset_ + e.begin, e.dtype, e.shape};
}

void SafetensorsWriter::add(const std::string& name, DType dtype, const Shape& shape, const void* data) {
  Pending p{name, dtype, shape, {}};
  size_t n = size_t(num_elements(shape)) * dtype_size(dtype);
  p.bytes.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + n);
  data_bytes_ += n;
  tensors_.push_back(std::move(p));
}

SafetensorsWriter::Written SafetensorsWriter::write(const std::string& path) const {
  std::vector<SafetensorsSource> sources;
  sources.reserve(tensors_.size());
  for (const auto& t : tensors_) sources.push_back({t.name, t.dtype, t.shape, {std::span<const uint8_t>(t.bytes)}});
  return write_safetensors(path, metadata_, sources);
}

SafetensorsWriter::Written write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                                             const std::vector<SafetensorsSource>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (!seen.insert(t.name).second) fail("{}: tensor '{}' added twice", path, t.name);
    uint64_t bytes = 0;
    for (const auto& chunk : t.chunks) bytes += chunk.size();
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  uint64_t len = text.size();
  Sha256 hash;
  AtomicFile out(path);
  auto put = [&](const void* data, size_t n) {
    out.write(data, n);
    hash.update(data, n);
  };
  put(&len, 8);
  put(text.data(), text.size());
  for (const auto& t : tensors)
    for (const auto& chunk : t.chunks) put(chunk.data(), chunk.size());
  SafetensorsWriter::Written w;
  w.file_bytes = out.bytes_written();
  w.data_offset = 8 + len;
  out.commit();
  w.sha256 = hash.hex_digest();
  return w;
}

}  // namespace actcap
