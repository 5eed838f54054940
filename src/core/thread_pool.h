#pragma once
// A fixed pool of worker threads. parallel_for splits [begin, end) into chunks whose boundaries depend only
// on the range and the grain, never on the number of threads, so per-chunk work is identical for any
// thread count (results stay bit-reproducible).
//
// A decode step calls parallel_for a few hundred times, each for tens of microseconds of work, so handing a job
// over must cost far less than waking a sleeping thread (tens of microseconds on a VM). Workers that just
// finished a job spin for a short while before they sleep, the caller spins while the last chunks finish, and
// chunks are claimed with one atomic compare-and-swap.
#include <atomic>
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

  // Like parallel_for, but each claim takes a share of the chunks still unclaimed (at least one), so that the
  // threads take long runs first and finish together after few claims. Where runs are cut depends on the thread
  // count and on timing: only for work whose results do not depend on how the range is cut.
  void parallel_for_balanced(int64_t begin, int64_t end, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool used by the engine (set once from --threads).
  static ThreadPool& global();
  static void set_global_threads(int threads);

 private:
  // What a job's chunks need, copied by each thread that joins the job.
  struct Job {
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    int64_t begin = 0, end = 0, grain = 1, chunks = 0;
    int64_t share = 0;  // a claim takes (unclaimed chunks) / share of them, at least one; 0: one chunk
    uint32_t generation = 0;
  };

  void worker_loop();
  void stop_workers();
  void run(int64_t begin, int64_t end, int64_t grain, int64_t share,
           const std::function<void(int64_t, int64_t)>& fn);
  void run_chunks(const Job& job);
  bool wait_for_job(uint32_t seen);

  std::vector<std::thread> workers_;
  bool spin_ = true;     // false when there are more threads than cores: a spinning thread would steal one
  std::mutex serving_;   // held by the one parallel_for the workers serve
  std::mutex mutex_;     // guards job_, error_, stop_ and the sleeping side of the hand-over
  std::condition_variable wake_;
  Job job_;
  // The job's generation (high 32 bits) and its next unclaimed chunk (low 32 bits): a thread claims chunks only
  // of the job it joined, so a late worker can never take a chunk of the next job.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> chunks_done_{0};
  std::atomic<int> sleepers_{0};
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace actcap
