#include "io/safetensors.h"
#include "io/safetensors_producer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "io/spool_file.h"

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

namespace {

struct HeaderEntry {
  const std::string& name;
  DType dtype;
  const Shape& shape;
  uint64_t bytes;
};

std::string metadata_entry(const std::map<std::string, std::string>& metadata) {
  return "\"__metadata__\":" + nlohmann::ordered_json(metadata).dump();
}

std::string header_entry(const std::string& name, DType dtype, const Shape& shape, uint64_t offset, uint64_t bytes) {
  return nlohmann::ordered_json(name).dump() + ":" +
         nlohmann::ordered_json{{"dtype", dtype_name(dtype)}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}}.dump();
}

// The header text, padded so that the data section stays 8-byte aligned. Built entry by entry (an ordered_json
// object would make it quadratic in the number of tensors), with the same bytes nlohmann's dump of that object
// writes.
std::string safetensors_header(const std::string& path, const std::map<std::string, std::string>& metadata,
                               const std::vector<HeaderEntry>& tensors) {
  std::string text = "{";
  if (!metadata.empty()) text += metadata_entry(metadata);
  std::set<std::string_view> seen;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (!seen.insert(t.name).second) fail("{}: tensor '{}' added twice", path, t.name);
    if (text.size() > 1) text += ',';
    text += header_entry(t.name, t.dtype, t.shape, offset, t.bytes);
    offset += t.bytes;
  }
  text += '}';
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// A file written atomically and hashed on the way, so that a shard's SHA-256 never needs a second read.
class HashedFile {
 public:
  explicit HashedFile(const std::string& path) : out_(path) {}
  void put(const void* data, size_t n) {
    out_.write(data, n);
    hash_.update(data, n);
  }
  SafetensorsWriter::Written commit(uint64_t data_offset) {
    SafetensorsWriter::Written w;
    w.file_bytes = out_.bytes_written();
    w.data_offset = data_offset;
    out_.commit();
    w.sha256 = hash_.hex_digest();
    return w;
  }

 private:
  AtomicFile out_;
  Sha256 hash_;
};

}  // namespace

SafetensorsWriter::Written write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                                             const std::vector<SafetensorsSource>& tensors) {
  std::vector<HeaderEntry> entries;
  entries.reserve(tensors.size());
  for (const auto& t : tensors) {
    uint64_t bytes = 0;
    for (const auto& chunk : t.chunks) bytes += chunk.size();
    entries.push_back({t.name, t.dtype, t.shape, bytes});
  }
  const std::string text = safetensors_header(path, metadata, entries);
  const uint64_t len = text.size();
  HashedFile out(path);
  out.put(&len, 8);
  out.put(text.data(), text.size());
  for (const auto& t : tensors)
    for (const auto& chunk : t.chunks) out.put(chunk.data(), chunk.size());
  return out.commit(8 + len);
}

SafetensorsWriter::Written write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                                             const std::vector<SafetensorsProducer>& tensors) {
  std::vector<HeaderEntry> entries;
  entries.reserve(tensors.size());
  for (const auto& t : tensors) entries.push_back({t.name, t.dtype, t.shape, uint64_t(num_elements(t.shape)) * dtype_size(t.dtype)});
  const std::string text = safetensors_header(path, metadata, entries);
  const uint64_t len = text.size();
  HashedFile out(path);
  out.put(&len, 8);
  out.put(text.data(), text.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    uint64_t produced = 0;
    tensors[i].produce([&](const void* data, size_t n) {
      produced += n;
      if (produced > entries[i].bytes) fail("{}: tensor '{}' produced more than its {} bytes", path, tensors[i].name, entries[i].bytes);
      out.put(data, n);
    });
    if (produced != entries[i].bytes)
      fail("{}: tensor '{}' produced {} of its {} bytes", path, tensors[i].name, produced, entries[i].bytes);
  }
  return out.commit(8 + len);
}

SafetensorsSpool::SafetensorsSpool(std::string path, size_t lanes) : path_(std::move(path)) {
  // Named like the file's temporary, so that an interrupted run's leftovers are recognised as such.
  const std::string prefix = fmt::format("{}.tmp-{}", path_, ::getpid());
  for (size_t i = 0; i < lanes; ++i) lanes_.push_back(std::make_unique<SpoolFile>(fmt::format("{}.lane{}", prefix, i)));
  entries_ = std::make_unique<SpoolFile>(prefix + ".header");
}

SafetensorsSpool::~SafetensorsSpool() = default;

uint64_t SafetensorsSpool::lane_bytes(size_t lane) const { return lanes_.at(lane)->size(); }

void SafetensorsSpool::append(size_t lane, const void* data, size_t n) { lanes_.at(lane)->append(data, n); }

void SafetensorsSpool::add_tensor(const std::string& name, DType dtype, const Shape& shape) {
  const uint64_t bytes = uint64_t(num_elements(shape)) * dtype_size(dtype);
  entries_->append(",");
  entries_->append(header_entry(name, dtype, shape, declared_bytes_, bytes));
  declared_bytes_ += bytes;
}

SafetensorsWriter::Written SafetensorsSpool::commit(const std::map<std::string, std::string>& metadata) {
  uint64_t spooled = 0;
  for (const auto& lane : lanes_) spooled += lane->size();
  if (declared_bytes_ != spooled)
    fail("{}: the tensors declared hold {} bytes but {} were written", path_, declared_bytes_, spooled);
  // "{" metadata? entries (without the first comma when there is no metadata) "}" padding
  std::string head = "{";
  if (!metadata.empty()) head += metadata_entry(metadata);
  const uint64_t skip = metadata.empty() && entries_->size() > 0 ? 1 : 0;
  uint64_t text_size = head.size() + entries_->size() - skip + 1;
  std::string tail = "}";
  tail.append((8 - text_size % 8) % 8, ' ');
  text_size += tail.size() - 1;

  HashedFile out(path_);
  auto put = [&](const void* data, size_t n) { out.put(data, n); };
  put(&text_size, 8);
  put(head.data(), head.size());
  entries_->read_back(put, skip);
  put(tail.data(), tail.size());
  for (auto& lane : lanes_) lane->read_back(put);
  return out.commit(8 + text_size);
}

}  // namespace actcap
