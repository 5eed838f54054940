#pragma once
// The store lock: an advisory flock(2) on DIR/.lock. A writer (capture, resume, overwrite) holds it exclusively
// for its whole life; readers (ls, stats, verify, exports) hold it shared, so nobody reads a store while it is
// being written and no two writers interleave. The kernel releases it when its holder exits, even on kill -9,
// so a stale lock file is harmless. The writer records "pid PID on HOST" in the file for the error message.
#include <string>

namespace actcap {

class StoreLock {
 public:
  enum class Mode { Shared, Exclusive };
  // Throws actcap::Error naming the store and the holder if another process (or another StoreLock in this one)
  // holds it in a conflicting mode. Shared: a store without a lock file (or in a read-only folder) is read
  // unlocked, since no writer can be inside it without having created the file.
  StoreLock(const std::string& dir, Mode mode);
  ~StoreLock();
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;

 private:
  int fd_ = -1;
  bool exclusive_ = false;
};

}  // namespace actcap
