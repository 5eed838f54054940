#pragma once
// A fixed span of memory handed out as contiguous regions, first come first served, with a blocking acquire:
// the back-pressure of the capture pipeline. The pool manages offsets only; the caller owns the memory (pinned
// host or device) the offsets point into.
//
// Regions are placed one after another around a ring, so a pipeline that releases roughly in acquisition order
// never fragments. Releasing out of order is allowed; the space of a region comes back once every region
// acquired before it has been released too.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

namespace actcap {

class BoundedPool {
 public:
  struct Region {
    size_t offset = 0;
    size_t bytes = 0;  // as asked for
  };

  // `alignment` (a power of two) applies to every region's offset.
  explicit BoundedPool(size_t capacity, size_t alignment = 256);
  BoundedPool(const BoundedPool&) = delete;
  BoundedPool& operator=(const BoundedPool&) = delete;

  // Blocks until `bytes` contiguous bytes are free. Throws actcap::Error when bytes is 0 or more than the
  // capacity (callers split larger requests).
  Region acquire(size_t bytes);
  // The same without waiting: nothing when the space is not free now.
  std::optional<Region> try_acquire(size_t bytes);
  // Returns a region from acquire; wakes the callers waiting for space. Safe from any thread.
  void release(const Region& region);

  size_t capacity() const { return capacity_; }
  size_t bytes_in_use() const;  // reserved, including alignment and wrap-around padding
  size_t waiting() const;       // callers blocked in acquire right now (stall diagnostics)

 private:
  struct Entry {
    size_t start, end;  // reserved [start, end)
    bool released;
  };
  std::optional<size_t> place(size_t reserved) const;  // under mutex_
  Region take(size_t start, size_t reserved, size_t bytes);  // under mutex_
  size_t reserved_size(size_t bytes) const;

  const size_t capacity_, alignment_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::deque<Entry> live_;  // in acquisition order
  size_t waiting_ = 0;
};

}  // namespace actcap
