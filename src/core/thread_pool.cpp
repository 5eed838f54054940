#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace actcap {
namespace {

// How long an idle worker keeps watching for the next job before it sleeps: longer than the serial work between
// two parallel calls of a decode step, short enough that an idle pool costs nothing.
constexpr auto kSpinTime = std::chrono::microseconds(200);

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

uint32_t generation_of(uint64_t claim) { return uint32_t(claim >> 32); }
uint32_t chunk_of(uint64_t claim) { return uint32_t(claim); }

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads < 0 || threads > kMaxThreads)
    fail("thread count {} is out of range (0 = all hardware threads, at most {})", threads, kMaxThreads);
  const int cores = int(std::clamp(std::thread::hardware_concurrency(), 1u, unsigned(kMaxThreads)));
  if (threads == 0) threads = cores;
  spin_ = threads <= cores;
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

void ThreadPool::run_chunks(const Job& job) {
  uint64_t claim = claim_.load(std::memory_order_acquire);
  for (;;) {
    const int64_t first = chunk_of(claim);
    if (generation_of(claim) != job.generation || first >= job.chunks) return;
    const int64_t count = job.share > 0 ? std::max<int64_t>(1, (job.chunks - first) / job.share) : 1;
    if (!claim_.compare_exchange_weak(claim, claim + uint64_t(count), std::memory_order_acq_rel)) continue;
    const int64_t b = job.begin + first * job.grain;
    const int64_t e = std::min(job.end, b + count * job.grain);
    try {
      (*job.fn)(b, e);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    chunks_done_.fetch_add(count, std::memory_order_acq_rel);
    claim = claim_.load(std::memory_order_acquire);
  }
}

// Returns false when the pool stops. Spins first, then sleeps; sleepers_ and claim_ are both sequentially
// consistent, so a caller that publishes a job either sees this thread sleeping or this thread sees the job.
bool ThreadPool::wait_for_job(uint32_t seen) {
  auto published = [&] { return generation_of(claim_.load()) != seen; };
  if (spin_) {
    const auto until = std::chrono::steady_clock::now() + kSpinTime;
    for (int i = 1; !published(); ++i) {
      cpu_relax();
      if (i % 64 == 0 && std::chrono::steady_clock::now() > until) break;
    }
  }
  std::unique_lock lock(mutex_);
  sleepers_.fetch_add(1);
  wake_.wait(lock, [&] { return stop_ || published(); });
  sleepers_.fetch_sub(1);
  return !stop_;
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;
  while (wait_for_job(seen)) {
    Job job;
    {
      std::lock_guard lock(mutex_);
      job = job_;
    }
    seen = job.generation;
    run_chunks(job);
  }
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  run(begin, end, grain, 0, fn);
}

// Shares of half the remainder per thread: the first claims are long runs, and the last ones single chunks.
void ThreadPool::parallel_for_balanced(int64_t begin, int64_t end, int64_t grain,
                                       const std::function<void(int64_t, int64_t)>& fn) {
  run(begin, end, grain, 2 * int64_t(size()), fn);
}

void ThreadPool::run(int64_t begin, int64_t end, int64_t grain, int64_t share,
                     const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (end - begin - 1) / grain + 1;
  // A second caller while the workers serve another (captures on several devices at once) runs its chunks
  // itself, and so does a job of more chunks than a claim counts: the chunks, hence the results, are the same.
  std::unique_lock serving(serving_, std::try_to_lock);
  if (chunks == 1 || workers_.empty() || !serving.owns_lock() || chunks >= int64_t(UINT32_MAX)) {
    if (share > 0) return fn(begin, end);  // one thread: one run
    for (int64_t b = begin; b < end; b += grain) fn(b, std::min(end, b + grain));
    return;
  }
  Job job;
  {
    std::lock_guard lock(mutex_);
    job = Job{&fn, begin, end, grain, chunks, share, generation_of(claim_.load()) + 1};
    job_ = job;
    error_ = nullptr;
    chunks_done_.store(0);
    claim_.store(uint64_t(job.generation) << 32);
  }
  if (sleepers_.load() > 0) wake_.notify_all();
  run_chunks(job);
  for (int i = 1; chunks_done_.load(std::memory_order_acquire) != chunks; ++i) {
    cpu_relax();
    if (i % 1024 == 0) std::this_thread::yield();  // a worker may have been descheduled mid-chunk
  }
  std::lock_guard lock(mutex_);
  job_.fn = nullptr;
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
