#include "io/zip_reader.h"

#include "core/error.h"

namespace actcap {

namespace {
// Signatures and field offsets: PKWARE APPNOTE 4.3.7 (local header), 4.3.12 (central directory), 4.3.14-16 (end
// records).
constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50, kEnd = 0x06054b50;
constexpr uint32_t kZip64End = 0x06064b50, kZip64Locator = 0x07064b50;

uint64_t le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}
}  // namespace

ZipReader::ZipReader(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
  const uint8_t* data = file_->data();
  const uint64_t size = file_->size();
  auto need = [&](uint64_t offset, uint64_t bytes, const char* what) {
    if (offset > size || bytes > size - offset) fail("{}: truncated ZIP archive ({} runs past the end)", path, what);
  };
  // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
  if (size < 22) fail("{}: not a ZIP archive (too short)", path);
  int64_t end = -1;
  for (int64_t at = int64_t(size) - 22; at >= 0 && at >= int64_t(size) - 22 - 65535; --at)
    if (le(data + at, 4) == kEnd) {
      end = at;
      break;
    }
  if (end < 0) fail("{}: not a ZIP archive (no end of central directory)", path);
  uint64_t count = le(data + end + 10, 2), directory = le(data + end + 16, 4);
  if (count == 0xffff || directory == 0xffffffff) {
    if (end < 20 || le(data + end - 20, 4) != kZip64Locator) fail("{}: zip64 archive without its locator", path);
    const uint64_t record = le(data + end - 20 + 8, 8);
    need(record, 56, "the zip64 end record");
    if (le(data + record, 4) != kZip64End) fail("{}: bad zip64 end record", path);
    count = le(data + record + 32, 8);
    directory = le(data + record + 48, 8);
  }
  uint64_t at = directory;
  for (uint64_t i = 0; i < count; ++i) {
    need(at, 46, "the central directory");
    if (le(data + at, 4) != kCentralHeader) fail("{}: bad central directory entry {}", path, i);
    Entry e;
    e.method = uint16_t(le(data + at + 10, 2));
    uint64_t compressed = le(data + at + 20, 4);
    e.size = le(data + at + 24, 4);
    const uint64_t name_len = le(data + at + 28, 2), extra_len = le(data + at + 30, 2), comment_len = le(data + at + 32, 2);
    e.local_header = le(data + at + 42, 4);
    need(at + 46, name_len + extra_len + comment_len, "a central directory entry");
    std::string name(reinterpret_cast<const char*>(data + at + 46), name_len);
    // zip64 extra field (id 1): the 8-byte values of the classic fields that hold all ones, in this order.
    for (uint64_t x = at + 46 + name_len; x + 4 <= at + 46 + name_len + extra_len;) {
      const uint64_t id = le(data + x, 2), len = le(data + x + 2, 2);
      uint64_t field = x + 4;
      if (id == 1) {
        if (e.size == 0xffffffff && field + 8 <= x + 4 + len) e.size = le(data + field, 8), field += 8;
        if (compressed == 0xffffffff && field + 8 <= x + 4 + len) compressed = le(data + field, 8), field += 8;
        if (e.local_header == 0xffffffff && field + 8 <= x + 4 + len) e.local_header = le(data + field, 8);
      }
      x += 4 + len;
    }
    if (e.method == 0 && compressed != e.size)
      fail("{}: entry {} is stored but its sizes differ ({} vs {})", path, name, compressed, e.size);
    entries_[name] = e;
    at += 46 + name_len + extra_len + comment_len;
  }
}

std::vector<std::string> ZipReader::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

std::string_view ZipReader::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("{}: the archive has no entry {}", path(), name);
  const Entry& e = it->second;
  if (e.method != 0)
    fail("{}: entry {} is compressed (method {}); only stored entries (as torch.save writes) are read", path(), name,
         e.method);
  const uint8_t* data = file_->data();
  const uint64_t size = file_->size();
  if (e.local_header > size || size - e.local_header < 30 || le(data + e.local_header, 4) != kLocalHeader)
    fail("{}: entry {} has no local header where the directory says", path(), name);
  const uint64_t begin = e.local_header + 30 + le(data + e.local_header + 26, 2) + le(data + e.local_header + 28, 2);
  if (begin > size || e.size > size - begin) fail("{}: entry {} runs past the end of the archive", path(), name);
  return {reinterpret_cast<const char*>(data + begin), e.size};
}

}  // namespace actcap
