#pragma once
// Output files are written under a temporary name in the same folder and renamed into place only when
// complete and flushed, so a crash, a full disk or an error never leaves a partial file under the real name.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace actcap {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // opens "<path>.tmp-<pid>"; throws actcap::Error
  ~AtomicFile();                           // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // throws on a short write (disk full), naming the file
  void write(std::string_view text) { write(text.data(), text.size()); }
  uint64_t bytes_written() const { return written_; }
  void commit();  // flush, fsync, rename to the final path

  const std::string& path() const { return path_; }

 private:
  std::string path_, temp_path_;
  std::FILE* file_ = nullptr;
  uint64_t written_ = 0;
};

// Writes a whole file atomically.
void write_file_atomic(const std::string& path, std::string_view contents);
std::string read_file(const std::string& path);  // throws actcap::Error naming the file

}  // namespace actcap
