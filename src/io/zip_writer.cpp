#include "io/zip_writer.h"

#include <array>

#include "core/error.h"

namespace actcap {

namespace {

// Slicing-by-8 tables for the reflected polynomial 0xEDB88320.
struct Crc32Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Crc32Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};
const Crc32Tables& tables() {
  static const Crc32Tables instance;
  return instance;
}

constexpr uint32_t kLocalHeader = 0x04034b50, kDataDescriptor = 0x08074b50, kCentralHeader = 0x02014b50,
                   kEndOfCentralDirectory = 0x06054b50, kZip64EndOfCentralDirectory = 0x06064b50,
                   kZip64EndLocator = 0x07064b50;
constexpr uint16_t kVersion = 20;            // 2.0: stored entries with data descriptors
constexpr uint16_t kZip64Version = 45;       // 4.5: zip64 structures
constexpr uint16_t kFlags = 0x0808;          // bit 3: sizes in a data descriptor; bit 11: UTF-8 names
constexpr uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01, fixed so archives are reproducible
constexpr uint16_t kZip64FieldId = 0x0001;
constexpr uint16_t kPaddingFieldId = 0x4246;  // "FB", PyTorch's alignment padding field
constexpr uint64_t k16 = 0xffff, k32 = 0xffffffff;  // all ones in a classic field: the value is in zip64

void put16(std::string& out, uint16_t v) {
  out.push_back(char(v & 0xff));
  out.push_back(char(v >> 8));
}
void put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}
void put64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

}  // namespace

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
  const auto& t = tables().t;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  while (n >= 8) {
    uint32_t lo = crc ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
          t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

ZipWriter::ZipWriter(std::string path, Zip64 zip64) : file_(std::move(path)), zip64_(zip64) {}

void ZipWriter::begin_entry(std::string name, uint64_t size) {
  if (open_) fail("{}: zip entry '{}' begun before the previous one ended", file_.path(), name);
  if (name.empty() || name.size() > 0xffff) fail("{}: invalid zip entry name '{}'", file_.path(), name);
  Entry entry;
  entry.name = std::move(name);
  entry.size = size;
  entry.header_offset = file_.bytes_written();
  entry.zip64 = needs_zip64(size, k32);

  // Bit 3 leaves crc and sizes zero here, the zip64 field's included (as Python's zipfile writes it); its
  // presence is what tells readers the data descriptor's sizes are 8 bytes (APPNOTE 4.3.9.2, 4.5.3). The local
  // header has no offset field, so an offset past 4 GiB needs zip64 only in the central directory.
  std::string extra;
  if (entry.zip64) {
    put16(extra, kZip64FieldId);
    put16(extra, 16);
    put64(extra, 0);  // uncompressed size
    put64(extra, 0);  // compressed size
  }
  const uint64_t unpadded = entry.header_offset + 30 + entry.name.size() + extra.size() + 4;
  const size_t padding = (kAlignment - unpadded % kAlignment) % kAlignment;
  put16(extra, kPaddingFieldId);
  put16(extra, uint16_t(padding));
  extra.append(padding, 'Z');

  std::string header;
  put32(header, kLocalHeader);
  put16(header, entry.zip64 ? kZip64Version : kVersion);
  put16(header, kFlags);
  put16(header, 0);  // stored
  put16(header, 0);  // time
  put16(header, kDosDate);
  put32(header, 0);  // crc, compressed and uncompressed sizes: in the data descriptor
  put32(header, 0);
  put32(header, 0);
  put16(header, uint16_t(entry.name.size()));
  put16(header, uint16_t(extra.size()));
  header += entry.name;
  header += extra;
  file_.write(header);
  entries_.push_back(std::move(entry));
  open_ = true;
}

void ZipWriter::write(const void* data, size_t n) {
  if (!open_) fail("{}: zip data written outside an entry", file_.path());
  Entry& entry = entries_.back();
  if (n > entry.size - entry.written)
    fail("{}: zip entry '{}' got more than the {} bytes declared", file_.path(), entry.name, entry.size);
  entry.crc = crc32_update(entry.crc, data, n);
  entry.written += n;
  file_.write(data, n);
}

void ZipWriter::end_entry() {
  if (!open_) fail("{}: zip entry ended twice", file_.path());
  const Entry& entry = entries_.back();
  if (entry.written != entry.size)
    fail("{}: zip entry '{}' got {} of the {} bytes declared", file_.path(), entry.name, entry.written, entry.size);
  std::string descriptor;
  put32(descriptor, kDataDescriptor);
  put32(descriptor, entry.crc);
  if (entry.zip64) {
    put64(descriptor, entry.size);
    put64(descriptor, entry.size);
  } else {
    put32(descriptor, uint32_t(entry.size));
    put32(descriptor, uint32_t(entry.size));
  }
  file_.write(descriptor);
  open_ = false;
}

void ZipWriter::commit() {
  if (open_) fail("{}: zip entry '{}' never ended", file_.path(), entries_.back().name);
  const uint64_t directory_offset = file_.bytes_written();
  std::string directory;
  for (const Entry& entry : entries_) {
    // The zip64 field holds exactly the values whose classic fields are all ones, in APPNOTE order.
    const bool zip64_offset = needs_zip64(entry.header_offset, k32);
    std::string extra;
    if (entry.zip64 || zip64_offset) {
      put16(extra, kZip64FieldId);
      put16(extra, uint16_t((entry.zip64 ? 16 : 0) + (zip64_offset ? 8 : 0)));
      if (entry.zip64) {
        put64(extra, entry.size);  // uncompressed
        put64(extra, entry.size);  // compressed
      }
      if (zip64_offset) put64(extra, entry.header_offset);
    }
    const uint16_t version = extra.empty() ? kVersion : kZip64Version;
    const uint32_t size32 = entry.zip64 ? uint32_t(k32) : uint32_t(entry.size);
    put32(directory, kCentralHeader);
    put16(directory, version);  // made by (MS-DOS)
    put16(directory, version);  // needed
    put16(directory, kFlags);
    put16(directory, 0);
    put16(directory, 0);
    put16(directory, kDosDate);
    put32(directory, entry.crc);
    put32(directory, size32);
    put32(directory, size32);
    put16(directory, uint16_t(entry.name.size()));
    put16(directory, uint16_t(extra.size()));
    put16(directory, 0);  // comment
    put16(directory, 0);  // disk
    put16(directory, 0);  // internal attributes
    put32(directory, 0);  // external attributes
    put32(directory, zip64_offset ? uint32_t(k32) : uint32_t(entry.header_offset));
    directory += entry.name;
    directory += extra;
  }

  const uint64_t count = entries_.size(), directory_size = directory.size();
  const bool zip64_count = needs_zip64(count, k16), zip64_size = needs_zip64(directory_size, k32),
             zip64_offset = needs_zip64(directory_offset, k32);
  if (zip64_count || zip64_size || zip64_offset) {
    const uint64_t record_offset = directory_offset + directory_size;
    put32(directory, kZip64EndOfCentralDirectory);
    put64(directory, 44);  // size of the rest of this record
    put16(directory, kZip64Version);  // made by
    put16(directory, kZip64Version);  // needed
    put32(directory, 0);   // this disk
    put32(directory, 0);   // disk of the central directory
    put64(directory, count);  // entries on this disk
    put64(directory, count);  // entries in all
    put64(directory, directory_size);
    put64(directory, directory_offset);
    put32(directory, kZip64EndLocator);
    put32(directory, 0);  // disk of the zip64 end record
    put64(directory, record_offset);
    put32(directory, 1);  // disks in all
  }
  put32(directory, kEndOfCentralDirectory);
  put16(directory, 0);  // this disk
  put16(directory, 0);  // disk of the central directory
  put16(directory, zip64_count ? uint16_t(k16) : uint16_t(count));
  put16(directory, zip64_count ? uint16_t(k16) : uint16_t(count));
  put32(directory, zip64_size ? uint32_t(k32) : uint32_t(directory_size));
  put32(directory, zip64_offset ? uint32_t(k32) : uint32_t(directory_offset));
  put16(directory, 0);  // comment length
  file_.write(directory);
  file_.commit();
}

}  // namespace actcap
