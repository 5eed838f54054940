#pragma once
// Small host -> device uploads on a stream (batch token ids and positions, attention descriptors) without a
// host synchronisation: the data goes through pinned staging slots, used in turn; a slot's pinned memory is
// rewritten only after the event recorded behind its previous copy has passed. Each slot's device memory is
// reused in stream order, after every kernel queued before the new copy, so the kernels that read an upload
// may run any time later on the same stream.
#include <cuda_runtime.h>

#include <vector>

namespace actcap::ops::cuda {

class UploadRing {
 public:
  UploadRing(cudaStream_t stream, int slots);
  ~UploadRing();
  UploadRing(const UploadRing&) = delete;
  UploadRing& operator=(const UploadRing&) = delete;

  // Queues a copy of `bytes` bytes and returns where they will be on the device (valid for the kernels queued
  // until this slot comes round again: `slots` uploads later).
  void* upload(const void* data, size_t bytes);

 private:
  struct Slot {
    void* host = nullptr;    // pinned
    void* device = nullptr;  // stream-ordered allocation (ops/cuda/stream_memory.h)
    size_t capacity = 0;
    cudaEvent_t copied = nullptr;
    bool pending = false;  // `copied` has been recorded
  };
  cudaStream_t stream_;
  std::vector<Slot> slots_;
  size_t next_ = 0;
};

}  // namespace actcap::ops::cuda
