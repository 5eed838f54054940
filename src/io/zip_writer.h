#pragma once
// A ZIP writer for uncompressed ("stored") archives, as torch.save's format needs: each entry's data starts at a
// multiple of 64 bytes (padding in a local "FB" extra field, as PyTorch's writer does, so readers can mmap
// tensors), CRC-32 and sizes follow the data in a data descriptor, so entries stream straight from memory maps.
// Zip64 (PKWARE APPNOTE 4.3.9, 4.3.14, 4.3.15, 4.5.3) where a size, offset or count does not fit the classic
// fields, and only there: archives that fit are byte for byte what they were without zip64.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/atomic_file.h"

namespace actcap {

// CRC-32 (IEEE 802.3, zlib's crc32): crc32_update(0, data, n) is the checksum of data; chain calls for pieces.
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

// Always writes every zip64 structure (extra fields in every header, the zip64 end record and locator) whatever
// the sizes, so tests check zip64 with readers without writing 4 GiB.
enum class Zip64 { WhenNeeded, Always };

class ZipWriter {
 public:
  static constexpr size_t kAlignment = 64;

  // Written atomically: nothing appears under `path` before commit().
  explicit ZipWriter(std::string path, Zip64 zip64 = Zip64::WhenNeeded);

  // An entry of `size` bytes named by a '/'-separated path. The size is declared up front because the local
  // header, written before the data, must already say whether the entry is zip64 (which also fixes where the
  // aligned data starts); write() must then deliver exactly `size` bytes.
  void begin_entry(std::string name, uint64_t size);
  void write(const void* data, size_t n);  // the open entry's data, in pieces
  void end_entry();
  void add(std::string name, std::string_view data) {
    begin_entry(std::move(name), data.size());
    write(data.data(), data.size());
    end_entry();
  }

  void commit();  // central directory and end records, then the rename

 private:
  struct Entry {
    std::string name;
    uint32_t crc = 0;
    uint64_t size = 0, written = 0, header_offset = 0;
    bool zip64 = false;  // local header has a zip64 field, so the data descriptor has 8-byte sizes
  };
  // Whether `value` needs its zip64 field: the classic field's all-ones value means "see zip64".
  bool needs_zip64(uint64_t value, uint64_t classic_max) const {
    return zip64_ == Zip64::Always || value >= classic_max;
  }
  AtomicFile file_;
  Zip64 zip64_;
  std::vector<Entry> entries_;
  bool open_ = false;
};

}  // namespace actcap
