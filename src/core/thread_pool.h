#pragma once
// A fixed pool of worker threads. parallel_for splits [begin, end) into chunks whose boundaries depend only
// on the range and the grain, never on the number of threads, so per-chunk work is identical for any
// thread count (results stay bit-reproducible).
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace actcap {

class ThreadPool {
 public:
  // At most this many threads: more only thrashes, and tens of thousands exhaust the system's thread limit.
  static constexpr int kMaxThreads = 1024;

  // 0 = all hardware threads. Throws actcap::Error for a count outside [0, kMaxThreads], or when the system
  // refuses to start a thread (the threads already started are stopped first).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }  // the calling thread works too

  // Calls fn(chunk_begin, chunk_end) for consecutive chunks of at most `grain` items; blocks until done.
  // Callable from several threads at once (the workers serve one; the others run their chunks themselves).
  void parallel_for(int64_t begin, int64_t end, int64_t grain,
                    const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool used by the engine (set once from --threads).
  static ThreadPool& global();
  static void set_global_threads(int threads);

 private:
  void worker_loop();
  void stop_workers();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex serving_;  // held by the one parallel_for the workers serve
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t begin_ = 0, end_ = 0, grain_ = 1;
  int64_t next_chunk_ = 0, chunks_ = 0, chunks_done_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace actcap
