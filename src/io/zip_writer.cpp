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
                   kEndOfCentralDirectory = 0x06054b50;
constexpr uint16_t kVersion = 20;            // 2.0: stored entries with data descriptors
constexpr uint16_t kFlags = 0x0808;          // bit 3: sizes in a data descriptor; bit 11: UTF-8 names
constexpr uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01, fixed so archives are reproducible
constexpr uint16_t kPaddingFieldId = 0x4246;  // "FB", PyTorch's alignment padding field

void put16(std::string& out, uint16_t v) {
  out.push_back(char(v & 0xff));
  out.push_back(char(v >> 8));
}
void put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
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

ZipWriter::ZipWriter(std::string path) : file_(std::move(path)) {}

void ZipWriter::check_fits(uint64_t value, const char* what) const {
  if (value > 0xffffffffull)
    fail("{}: {} exceeds 4 GiB, which needs zip64 (not supported): export fewer records or sites per file",
         file_.path(), what);
}

void ZipWriter::begin_entry(std::string name) {
  if (open_) fail("{}: zip entry '{}' begun before the previous one ended", file_.path(), name);
  if (name.empty() || name.size() > 0xffff) fail("{}: invalid zip entry name '{}'", file_.path(), name);
  Entry entry;
  entry.name = std::move(name);
  entry.header_offset = file_.bytes_written();
  check_fits(entry.header_offset, "the archive");

  const size_t unpadded = entry.header_offset + 30 + entry.name.size() + 4;
  const size_t padding = (kAlignment - unpadded % kAlignment) % kAlignment;
  std::string header;
  put32(header, kLocalHeader);
  put16(header, kVersion);
  put16(header, kFlags);
  put16(header, 0);  // stored
  put16(header, 0);  // time
  put16(header, kDosDate);
  put32(header, 0);  // crc, compressed and uncompressed sizes: in the data descriptor
  put32(header, 0);
  put32(header, 0);
  put16(header, uint16_t(entry.name.size()));
  put16(header, uint16_t(4 + padding));
  header += entry.name;
  put16(header, kPaddingFieldId);
  put16(header, uint16_t(padding));
  header.append(padding, 'Z');
  file_.write(header);
  entries_.push_back(std::move(entry));
  open_ = true;
}

void ZipWriter::write(const void* data, size_t n) {
  if (!open_) fail("{}: zip data written outside an entry", file_.path());
  Entry& entry = entries_.back();
  entry.crc = crc32_update(entry.crc, data, n);
  entry.size += n;
  check_fits(entry.size, ("entry " + entry.name).c_str());
  file_.write(data, n);
}

void ZipWriter::end_entry() {
  if (!open_) fail("{}: zip entry ended twice", file_.path());
  const Entry& entry = entries_.back();
  std::string descriptor;
  put32(descriptor, kDataDescriptor);
  put32(descriptor, entry.crc);
  put32(descriptor, uint32_t(entry.size));
  put32(descriptor, uint32_t(entry.size));
  file_.write(descriptor);
  open_ = false;
}

void ZipWriter::commit() {
  if (open_) fail("{}: zip entry '{}' never ended", file_.path(), entries_.back().name);
  if (entries_.size() > 0xffff) fail("{}: {} entries need zip64 (not supported)", file_.path(), entries_.size());
  const uint64_t directory_offset = file_.bytes_written();
  check_fits(directory_offset, "the archive");
  std::string directory;
  for (const Entry& entry : entries_) {
    put32(directory, kCentralHeader);
    put16(directory, kVersion);  // made by (MS-DOS, 2.0)
    put16(directory, kVersion);  // needed
    put16(directory, kFlags);
    put16(directory, 0);
    put16(directory, 0);
    put16(directory, kDosDate);
    put32(directory, entry.crc);
    put32(directory, uint32_t(entry.size));
    put32(directory, uint32_t(entry.size));
    put16(directory, uint16_t(entry.name.size()));
    put16(directory, 0);  // extra
    put16(directory, 0);  // comment
    put16(directory, 0);  // disk
    put16(directory, 0);  // internal attributes
    put32(directory, 0);  // external attributes
    put32(directory, uint32_t(entry.header_offset));
    directory += entry.name;
  }
  check_fits(directory_offset + directory.size(), "the archive");
  const uint32_t directory_size = uint32_t(directory.size());
  put32(directory, kEndOfCentralDirectory);
  put16(directory, 0);  // this disk
  put16(directory, 0);  // disk of the central directory
  put16(directory, uint16_t(entries_.size()));
  put16(directory, uint16_t(entries_.size()));
  put32(directory, directory_size);
  put32(directory, uint32_t(directory_offset));
  put16(directory, 0);  // comment length
  file_.write(directory);
  file_.commit();
}

}  // namespace actcap
