#pragma once
// A ZIP writer for uncompressed ("stored") archives, as torch.save's format needs: each entry's data starts at a
// multiple of 64 bytes (padding in a local "FB" extra field, as PyTorch's writer does, so readers can mmap
// tensors), CRC-32 and sizes follow the data in a data descriptor, so entries stream straight from memory maps.
// No zip64: an archive over 4 GiB or with more than 65535 entries is a clear actcap::Error.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/atomic_file.h"

namespace actcap {

// CRC-32 (IEEE 802.3, zlib's crc32): crc32_update(0, data, n) is the checksum of data; chain calls for pieces.
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

class ZipWriter {
 public:
  static constexpr size_t kAlignment = 64;

  explicit ZipWriter(std::string path);  // written atomically: nothing appears under `path` before commit()

  void begin_entry(std::string name);        // a path inside the archive, '/'-separated
  void write(const void* data, size_t n);    // the open entry's data, in pieces
  void end_entry();
  void add(std::string name, std::string_view data) {
    begin_entry(std::move(name));
    write(data.data(), data.size());
    end_entry();
  }

  void commit();  // central directory and end record, then the rename

 private:
  struct Entry {
    std::string name;
    uint32_t crc = 0;
    uint64_t size = 0, header_offset = 0;
  };
  void check_fits(uint64_t value, const char* what) const;
  AtomicFile file_;
  std::vector<Entry> entries_;
  bool open_ = false;
};

}  // namespace actcap
