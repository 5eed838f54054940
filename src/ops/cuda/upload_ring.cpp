#include "ops/cuda/upload_ring.h"

#include <algorithm>
#include <cstring>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/stream_memory.h"

namespace actcap::ops::cuda {

UploadRing::UploadRing(cudaStream_t stream, int slots) : stream_(stream), slots_(size_t(slots)) {
  for (Slot& slot : slots_) ACTCAP_CUDA(cudaEventCreateWithFlags(&slot.copied, cudaEventDisableTiming));
}

UploadRing::~UploadRing() {
  cudaStreamSynchronize(stream_);
  for (Slot& slot : slots_) {
    if (slot.host) cudaFreeHost(slot.host);
    stream_free(slot.device, stream_);
    if (slot.copied) cudaEventDestroy(slot.copied);
  }
  cudaStreamSynchronize(stream_);
}

void* UploadRing::upload(const void* data, size_t bytes) {
  Slot& slot = slots_[next_];
  next_ = (next_ + 1) % slots_.size();
  if (slot.pending) ACTCAP_CUDA(cudaEventSynchronize(slot.copied));  // normally long passed
  if (bytes > slot.capacity) {
    const size_t capacity = std::max(bytes, std::max(slot.capacity * 2, size_t(4096)));
    if (slot.host) ACTCAP_CUDA(cudaFreeHost(slot.host));
    slot.host = nullptr;
    stream_free(slot.device, stream_);  // after the kernels still reading it
    slot.device = nullptr;
    slot.capacity = 0;
    ACTCAP_CUDA(cudaMallocHost(&slot.host, capacity));
    slot.device = stream_allocate(capacity, stream_);
    slot.capacity = capacity;
  }
  if (bytes == 0) return slot.device;
  std::memcpy(slot.host, data, bytes);
  ACTCAP_CUDA(cudaMemcpyAsync(slot.device, slot.host, bytes, cudaMemcpyHostToDevice, stream_));
  ACTCAP_CUDA(cudaEventRecord(slot.copied, stream_));
  slot.pending = true;
  return slot.device;
}

}  // namespace actcap::ops::cuda
