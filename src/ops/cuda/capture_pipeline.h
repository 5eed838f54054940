#pragma once
// Gets captured activations off the GPU while the forward pass goes on:
//   1. on the compute stream, a snapshot of the source into a bounded device staging pool, converted to fp32
//      there (a 16-bit activation doubles its PCIe bytes, but the host then has no conversion to do, which
//      would otherwise limit throughput), so later ops may overwrite the source at once;
//   2. on a copy stream, once the snapshot is done, device staging -> a bounded pinned host pool; an event
//      recorded behind that copy tells the capturing thread when the staging region may be reused (it polls
//      the events of earlier copies before each acquisition and waits on the oldest when the pool is full, so
//      a device fault is reported there as an error: a stream callback would never run after one, and the
//      capture would wait forever for space);
//   3. on the delivery thread, in request order, one at a time: wait for the copy and call deliver(host) on the
//      pinned memory itself; then the pinned region is released.
// Both pools are fixed in size: capture() blocks while they are full (back-pressure), never allocating more.
// A request larger than half a pool is split into pieces that go through the pools one by one and are
// assembled in a host buffer of the request's size before their one delivery.
#include <cuda_runtime.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/bounded_pool.h"
#include "core/ordered_delivery.h"
#include "core/dtype.h"

namespace actcap::ops::cuda {

class CapturePipeline {
 public:
  // `pinned_bytes` of page-locked host memory (at least 1 MiB) and up to as much device staging, both
  // allocated at the first capture.
  CapturePipeline(int device, cudaStream_t compute, DType dtype, size_t pinned_bytes);
  // Waits for every copy and delivery (their errors are dropped: call synchronize() first), frees everything.
  ~CapturePipeline();
  CapturePipeline(const CapturePipeline&) = delete;
  CapturePipeline& operator=(const CapturePipeline&) = delete;

  // Queues the capture of `elements` values of `src` (dtype elements on the device) as of this point of the
  // compute stream. `deliver` runs on the delivery thread and must not call back into the backend.
  void capture(const void* src, int64_t elements, std::function<void(const float*)> deliver);
  // Waits until every queued delivery is done; rethrows the first exception a delivery (or its copy) threw.
  void synchronize();

 private:
  void allocate_pools();
  BoundedPool::Region acquire_staging(size_t bytes);
  // Releases the staging regions whose copy to the host is done, oldest first; with `wait_for_oldest`, waits
  // for the oldest one at least. Throws the device's error when a copy failed.
  void reclaim_staging(bool wait_for_oldest);
  cudaEvent_t take_event();
  void give_event(cudaEvent_t event);

  const int device_;
  const cudaStream_t compute_;
  const DType dtype_;
  const size_t pinned_bytes_, staging_bytes_, piece_bytes_;
  cudaStream_t copy_ = nullptr;
  cudaEvent_t snapshot_ = nullptr;  // reused: a stream wait binds to the record made before it
  float* staging_ = nullptr;        // device
  float* pinned_ = nullptr;         // page-locked host
  std::unique_ptr<BoundedPool> staging_pool_, pinned_pool_;
  struct StagedCopy {
    cudaEvent_t copied;  // recorded behind the staging -> host copy
    BoundedPool::Region region;
  };
  std::deque<StagedCopy> staged_in_flight_;  // capturing thread only, in acquisition order
  std::mutex events_mutex_;
  std::vector<cudaEvent_t> free_events_;
  std::vector<float> assembled_;  // delivery thread only: split requests
  OrderedDelivery delivery_;      // last: its thread stops before the members above go
};

}  // namespace actcap::ops::cuda
