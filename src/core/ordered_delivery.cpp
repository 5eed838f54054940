#include "core/ordered_delivery.h"

#include <utility>

namespace actcap {

OrderedDelivery::OrderedDelivery() : thread_([this] { run(); }) {}

OrderedDelivery::~OrderedDelivery() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  posted_.notify_all();
  thread_.join();
}

void OrderedDelivery::post(std::function<void()> work, std::function<void()> cleanup) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Job{std::move(work), std::move(cleanup)});
  }
  posted_.notify_one();
}

void OrderedDelivery::wait() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void OrderedDelivery::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    posted_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ and drained
    Job job = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    const bool skip = error_ != nullptr;
    lock.unlock();
    std::exception_ptr thrown;
    if (!skip && job.work) {
      try {
        job.work();
      } catch (...) {
        thrown = std::current_exception();
      }
    }
    if (job.cleanup) job.cleanup();
    job = Job{};  // drop the callables' captures before reporting idle
    lock.lock();
    if (thrown && !error_) error_ = thrown;
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

}  // namespace actcap
