#pragma once
// Reads the entries of an uncompressed ("stored") ZIP archive, zip64 included, as torch.save writes them:
// zero-copy views into a memory map. Compressed entries are refused by name.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.h"

namespace actcap {

class ZipReader {
 public:
  explicit ZipReader(const std::string& path);  // reads the central directory; throws actcap::Error naming the file
  const std::string& path() const { return file_->path(); }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  std::string_view entry(const std::string& name) const;  // throws naming the archive and the entry

 private:
  struct Entry {
    uint16_t method = 0;
    uint64_t size = 0, local_header = 0;
  };
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, Entry> entries_;
};

}  // namespace actcap
