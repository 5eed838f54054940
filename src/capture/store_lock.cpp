#include "capture/store_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "capture/store_format.h"
#include "core/error.h"

namespace actcap {

namespace {

std::string this_host() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  return host;
}

// Who holds the lock: the writer named in the file if it is alive on this host; else, probing with a shared lock,
// a writer that has taken the lock but not yet written its name (an exclusive holder), or readers.
std::string holder_of(int fd) {
  char buffer[256] = {};
  const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
  long pid = 0;
  char host[256] = {};
  if (n > 0 && std::sscanf(buffer, "pid %ld on %255s", &pid, host) == 2 && pid > 0) {
    if (host != this_host()) return fmt::format("a capture (pid {} on {})", pid, host);
    if (::kill(pid_t(pid), 0) == 0 || errno == EPERM) return fmt::format("a capture (pid {})", pid);
  }
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) return "a capture (starting)";
  ::flock(fd, LOCK_UN);
  return "another process (a reader such as ls, verify or an export)";
}

}  // namespace

StoreLock::StoreLock(const std::string& dir, Mode mode) {
  const std::string path = (std::filesystem::path(dir) / store::kLockFile).string();
  const bool exclusive = exclusive_ = mode == Mode::Exclusive;
  fd_ = exclusive ? ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    if (!exclusive && (errno == ENOENT || errno == EACCES)) return;
    fail("{}: cannot open the store lock: {}", path, std::strerror(errno));
  }
  while (::flock(fd_, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    const int e = errno;
    const std::string holder = e == EWOULDBLOCK ? holder_of(fd_) : "";
    ::close(fd_);
    fd_ = -1;
    if (e != EWOULDBLOCK) fail("{}: cannot lock: {}", path, std::strerror(e));
    if (exclusive) fail("{}: the store is in use by {} (lock {}): wait for it to finish", dir, holder, path);
    fail("{}: the store is being written by {} (lock {}): read it when the capture has finished", dir, holder, path);
  }
  if (exclusive) {
    const std::string holder = fmt::format("pid {} on {}\n", ::getpid(), this_host());
    // Best effort: the text only improves the message another process prints.
    if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, holder.data(), holder.size(), 0);
  }
}

StoreLock::~StoreLock() {
  if (fd_ < 0) return;
  if (exclusive_) (void)!::ftruncate(fd_, 0);  // no longer names a writer (a killed one's name stays: it is dead)
  ::close(fd_);  // closing releases the lock
}

}  // namespace actcap
