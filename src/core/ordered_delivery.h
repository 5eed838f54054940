#pragma once
// One worker thread that runs jobs strictly in the order they were posted, one at a time: how captured
// activations reach their sink while the producer (the GPU pipeline) keeps going.
//
// A job is `work` (may throw) and `cleanup` (must not throw; always runs, e.g. to return buffers to a pool).
// The first exception thrown by a work is kept; the works posted after it are skipped (their cleanups still
// run) until wait() rethrows it, so a failing sink is reported once and never fed a partial stream silently.
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace actcap {

class OrderedDelivery {
 public:
  OrderedDelivery();
  // Runs the jobs still queued (or skips their work when an exception is pending), then joins the thread.
  // A pending exception is dropped: call wait() first to see it.
  ~OrderedDelivery();
  OrderedDelivery(const OrderedDelivery&) = delete;
  OrderedDelivery& operator=(const OrderedDelivery&) = delete;

  void post(std::function<void()> work, std::function<void()> cleanup = {});
  // Blocks until every job posted so far has finished; then rethrows (and clears) the kept exception.
  void wait();

 private:
  struct Job {
    std::function<void()> work, cleanup;
  };
  void run();

  std::mutex mutex_;
  std::condition_variable posted_, idle_;
  std::deque<Job> queue_;
  bool busy_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace actcap
