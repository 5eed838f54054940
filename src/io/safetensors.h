#pragma once
// The safetensors format: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the raw bytes.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace actcap {

class SpoolFile;

// A read-only memory map of a file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws actcap::Error naming the file
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct SafetensorsEntry {
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the data section
};

class SafetensorsFile {
 public:
  // Maps and validates the whole header (offsets in range, sizes matching dtype x shape, no overlaps).
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> names() const;  // sorted
  const SafetensorsEntry& entry(const std::string& name) const;  // throws naming file and tensor
  TensorView view(const std::string& name) const;                // zero-copy view into the map
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t data_offset() const { return data_offset_; }  // where the data section starts in the file

 private:
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_offset_ = 0;
};

// Collects tensors and writes one safetensors file atomically (temporary name, then rename).
class SafetensorsWriter {
 public:
  // Copies the bytes; tensors are written in the order they were added.
  void add(const std::string& name, DType dtype, const Shape& shape, const void* data);
  void add(const std::string& name, const TensorView& view) { add(name, view.dtype, view.shape, view.data); }
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  size_t size() const { return tensors_.size(); }
  uint64_t data_bytes() const { return data_bytes_; }

  struct Written {
    uint64_t file_bytes = 0;
    uint64_t data_offset = 0;  // start of the data section
    std::string sha256;        // of the whole file
  };
  Written write(const std::string& path) const;

 private:
  struct Pending {
    std::string name;
    DType dtype;
    Shape shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Pending> tensors_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_bytes_ = 0;
};

// A tensor to write whose bytes stay in the caller's buffers: `chunks` are written back to back, in order.
struct SafetensorsSource {
  std::string name;
  DType dtype;
  Shape shape;
  std::vector<std::span<const uint8_t>> chunks;
};

// Writes one safetensors file atomically, in the given tensor order, streaming the data from the sources
// (nothing is copied) and hashing it on the way. A __metadata__ entry is written only when `metadata` is
// not empty.
SafetensorsWriter::Written write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                                             const std::vector<SafetensorsSource>& tensors);

// A safetensors file written as its data arrives, before its header is known: the data is spooled into
// unlinked temporary files, one per "lane" (the data section is lane 0's bytes, then lane 1's, ...), and so are
// the header entries of the tensors declared so far, so memory holds only small buffers whatever the file's
// size or tensor count. commit() writes the header, copies the lanes after it while hashing, fsyncs and renames
// into place: the same bytes write_safetensors writes for the same tensors.
class SafetensorsSpool {
 public:
  SafetensorsSpool(std::string path, size_t lanes);  // the spool files live in the folder of `path`
  ~SafetensorsSpool();

  void append(size_t lane, const void* data, size_t n);  // throws naming the file (disk full)
  uint64_t lane_bytes(size_t lane) const;

  // Declares the next tensor in data order (the caller keeps names unique).
  void add_tensor(const std::string& name, DType dtype, const Shape& shape);
  uint64_t tensor_bytes() const { return declared_bytes_; }  // of the tensors declared so far

  // The declared tensors must cover the spooled bytes exactly. The spool is spent afterwards.
  SafetensorsWriter::Written commit(const std::map<std::string, std::string>& metadata);

 private:
  std::string path_;
  std::vector<std::unique_ptr<SpoolFile>> lanes_;
  std::unique_ptr<SpoolFile> entries_;  // the header's tensor entries, each starting with ','
  uint64_t declared_bytes_ = 0;
};

}  // namespace actcap
