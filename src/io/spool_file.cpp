#include "io/spool_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace actcap {

namespace {
constexpr size_t kBuffer = 256 << 10;
constexpr size_t kChunk = 1 << 20;
}  // namespace

SpoolFile::SpoolFile(std::string name) : name_(std::move(name)) {
  fd_ = ::open(name_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) fail("{}: cannot create a temporary file: {}", name_, std::strerror(errno));
  ::unlink(name_.c_str());
  buffer_.reserve(kBuffer);
}

SpoolFile::~SpoolFile() {
  if (fd_ >= 0) ::close(fd_);
}

void SpoolFile::flush() {
  const uint8_t* p = buffer_.data();
  size_t left = buffer_.size();
  while (left > 0) {
    const ssize_t n = ::pwrite(fd_, p, left, off_t(size_ - left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("{}: write failed: {}", name_, std::strerror(errno));
    p += n;
    left -= size_t(n);
  }
  buffer_.clear();
}

void SpoolFile::append(const void* data, size_t n) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  if (buffer_.size() + n > kBuffer) flush();
  size_ += n;
  if (n >= kBuffer) {
    // Written straight from the caller's bytes.
    buffer_.assign(bytes, bytes + n);
    flush();
  } else {
    buffer_.insert(buffer_.end(), bytes, bytes + n);
  }
}

void SpoolFile::read_back(const std::function<void(const uint8_t*, size_t)>& consume, uint64_t skip) {
  flush();
  std::vector<uint8_t> chunk(std::min<uint64_t>(kChunk, std::max<uint64_t>(size_, 1)));
  for (uint64_t at = skip; at < size_;) {
    const ssize_t n = ::pread(fd_, chunk.data(), size_t(std::min<uint64_t>(chunk.size(), size_ - at)), off_t(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("{}: cannot read back: {}", name_, n < 0 ? std::strerror(errno) : "the file is short");
    consume(chunk.data(), size_t(n));
    at += uint64_t(n);
  }
}

void SpoolFile::rewind() {
  flush();
  chunk_.clear();
  chunk_at_ = 0;
  file_at_ = 0;
}

void SpoolFile::read(void* out, size_t n) {
  auto* dst = static_cast<uint8_t*>(out);
  while (n > 0) {
    if (chunk_at_ == chunk_.size()) {
      if (file_at_ >= size_) fail("{}: read past its end", name_);
      chunk_.resize(size_t(std::min<uint64_t>(kChunk, size_ - file_at_)));
      const ssize_t got = ::pread(fd_, chunk_.data(), chunk_.size(), off_t(file_at_));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) fail("{}: cannot read back: {}", name_, got < 0 ? std::strerror(errno) : "the file is short");
      chunk_.resize(size_t(got));
      chunk_at_ = 0;
      file_at_ += uint64_t(got);
    }
    const size_t take = std::min(n, chunk_.size() - chunk_at_);
    std::memcpy(dst, chunk_.data() + chunk_at_, take);
    chunk_at_ += take;
    dst += take;
    n -= take;
  }
}

}  // namespace actcap
