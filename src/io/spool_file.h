#pragma once
// Bytes set aside on disk rather than in memory, in an unlinked temporary file: appended through a small buffer
// and read back in order. The kernel frees the file when it is closed, even after kill -9.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace actcap {

class SpoolFile {
 public:
  // The file is created as `name` (which names it in errors, and tells an interrupted run's leftover apart
  // should the unlink not happen) and unlinked at once.
  explicit SpoolFile(std::string name);
  ~SpoolFile();
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;

  void append(const void* data, size_t n);  // throws actcap::Error naming the file (disk full)
  void append(std::string_view text) { append(text.data(), text.size()); }
  uint64_t size() const { return size_; }

  // Calls `consume` with the bytes from `skip` on, in order, a chunk at a time.
  void read_back(const std::function<void(const uint8_t*, size_t)>& consume, uint64_t skip = 0);

  // Sequential reading from the start (after read_back or append, reading starts over).
  void rewind();
  void read(void* out, size_t n);  // throws if fewer than n bytes are left

 private:
  void flush();
  std::string name_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::vector<uint8_t> buffer_;
  // Reading.
  std::vector<uint8_t> chunk_;
  size_t chunk_at_ = 0;
  uint64_t file_at_ = 0;
};

}  // namespace actcap
