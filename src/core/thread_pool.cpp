#include "core/thread_pool.h"

#include <algorithm>
#include <memory>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace actcap {

ThreadPool::ThreadPool(int threads) {
  if (threads < 0 || threads > kMaxThreads)
    fail("thread count {} is out of range (0 = all hardware threads, at most {})", threads, kMaxThreads);
  if (threads == 0) threads = int(std::clamp(std::thread::hardware_concurrency(), 1u, unsigned(kMaxThreads)));
  workers_.reserve(size_t(threads - 1));
  try {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  } catch (const std::system_error& e) {
    stop_workers();  // the destructor does not run for a constructor that throws
    fail("cannot start thread {} of {}: {}", workers_.size() + 1, threads, e.what());
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_chunks() {
  for (;;) {
    int64_t chunk;
    {
      std::lock_guard lock(mutex_);
      if (next_chunk_ >= chunks_) return;
      chunk = next_chunk_++;
    }
    int64_t b = begin_ + chunk * grain_;
    int64_t e = std::min(end_, b + grain_);
    try {
      (*job_)(b, e);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    std::lock_guard lock(mutex_);
    if (++chunks_done_ == chunks_) done_.notify_all();
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    run_chunks();
  }
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  grain = std::max<int64_t>(1, grain);
  int64_t chunks = (end - begin + grain - 1) / grain;
  // A second caller while the workers serve another (captures on several devices at once) runs its chunks
  // itself: the chunks, hence the results, are the same.
  std::unique_lock serving(serving_, std::try_to_lock);
  if (chunks == 1 || workers_.empty() || !serving.owns_lock()) {
    for (int64_t b = begin; b < end; b += grain) fn(b, std::min(end, b + grain));
    return;
  }
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    begin_ = begin;
    end_ = end;
    grain_ = grain;
    next_chunk_ = 0;
    chunks_ = chunks;
    chunks_done_ = 0;
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  run_chunks();
  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return chunks_done_ == chunks_; });
  job_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

namespace {
std::unique_ptr<ThreadPool>& global_pool() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}
}  // namespace

ThreadPool& ThreadPool::global() {
  auto& pool = global_pool();
  if (!pool) pool = std::make_unique<ThreadPool>(0);
  return *pool;
}

void ThreadPool::set_global_threads(int threads) { global_pool() = std::make_unique<ThreadPool>(threads); }

}  // namespace actcap
