#include "core/bounded_pool.h"

#include <algorithm>

#include "core/error.h"

namespace actcap {

BoundedPool::BoundedPool(size_t capacity, size_t alignment) : capacity_(capacity), alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    fail("internal error: BoundedPool alignment {} is not a power of two", alignment);
}

size_t BoundedPool::reserved_size(size_t bytes) const {
  if (bytes == 0 || bytes > capacity_)
    fail("internal error: BoundedPool request of {} bytes (capacity {})", bytes, capacity_);
  return std::min(capacity_, (bytes + alignment_ - 1) / alignment_ * alignment_);
}

// The ring's used span runs from the oldest live region to the newest. Until the newest has wrapped around to
// the start, the free space is [newest end, capacity) and [0, oldest start); after, it is the gap between them.
std::optional<size_t> BoundedPool::place(size_t reserved) const {
  if (live_.empty()) return size_t(0);
  const size_t oldest = live_.front().start, head = live_.back().end;
  const bool wrapped = live_.back().start < oldest;
  if (wrapped) return oldest - head >= reserved ? std::optional<size_t>(head) : std::nullopt;
  if (capacity_ - head >= reserved) return head;
  if (oldest >= reserved) return size_t(0);
  return std::nullopt;
}

BoundedPool::Region BoundedPool::take(size_t start, size_t reserved, size_t bytes) {
  live_.push_back(Entry{start, start + reserved, false});
  return Region{start, bytes};
}

BoundedPool::Region BoundedPool::acquire(size_t bytes) {
  const size_t reserved = reserved_size(bytes);
  std::unique_lock lock(mutex_);
  std::optional<size_t> start = place(reserved);
  if (!start) {
    ++waiting_;
    freed_.wait(lock, [&] { return (start = place(reserved)).has_value(); });
    --waiting_;
  }
  return take(*start, reserved, bytes);
}

std::optional<BoundedPool::Region> BoundedPool::try_acquire(size_t bytes) {
  const size_t reserved = reserved_size(bytes);
  std::lock_guard lock(mutex_);
  const std::optional<size_t> start = place(reserved);
  if (!start) return std::nullopt;
  return take(*start, reserved, bytes);
}

void BoundedPool::release(const Region& region) {
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(live_.begin(), live_.end(),
                           [&](const Entry& e) { return e.start == region.offset && !e.released; });
    if (it == live_.end()) fail("internal error: BoundedPool release of a region at {} it does not hold", region.offset);
    it->released = true;
    while (!live_.empty() && live_.front().released) live_.pop_front();
  }
  freed_.notify_all();
}

size_t BoundedPool::bytes_in_use() const {
  std::lock_guard lock(mutex_);
  if (live_.empty()) return 0;
  const size_t oldest = live_.front().start, head = live_.back().end;
  return live_.back().start < oldest ? capacity_ - oldest + head : head - oldest;
}

size_t BoundedPool::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

}  // namespace actcap
