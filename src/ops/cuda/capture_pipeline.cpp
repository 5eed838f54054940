#include "ops/cuda/capture_pipeline.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/kernels.h"

namespace actcap::ops::cuda {
namespace {

constexpr size_t MIN_PINNED_BYTES = size_t(1) << 20;
constexpr size_t MAX_STAGING_BYTES = size_t(1) << 30;
constexpr size_t ALIGNMENT = 256;

size_t checked_pinned_bytes(size_t bytes) {
  if (bytes < MIN_PINNED_BYTES)
    fail("capture buffer of {} bytes is too small for the CUDA capture pipeline (at least {})", bytes,
         MIN_PINNED_BYTES);
  return bytes;
}

}  // namespace

CapturePipeline::CapturePipeline(int device, cudaStream_t compute, DType dtype, size_t pinned_bytes)
    : device_(device),
      compute_(compute),
      dtype_(dtype),
      pinned_bytes_(checked_pinned_bytes(pinned_bytes)),
      staging_bytes_(std::min(pinned_bytes, MAX_STAGING_BYTES)),
      piece_bytes_(std::min(pinned_bytes_, staging_bytes_) / 2 / ALIGNMENT * ALIGNMENT) {
  ACTCAP_CUDA(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking));
  ACTCAP_CUDA(cudaEventCreateWithFlags(&snapshot_, cudaEventDisableTiming));
}

CapturePipeline::~CapturePipeline() {
  cudaSetDevice(device_);
  try {
    delivery_.wait();
  } catch (...) {
    // Reported by synchronize() when the owner asked; a destructor cannot.
  }
  cudaStreamSynchronize(copy_);  // copies whose delivery was skipped after an error
  for (const StagedCopy& staged : staged_in_flight_) cudaEventDestroy(staged.copied);
  if (staging_) cudaFree(staging_);
  if (pinned_) cudaFreeHost(pinned_);
  for (cudaEvent_t event : free_events_) cudaEventDestroy(event);
  cudaEventDestroy(snapshot_);
  cudaStreamDestroy(copy_);
}

void CapturePipeline::allocate_pools() {
  ACTCAP_CUDA(cudaMalloc(&staging_, staging_bytes_));
  ACTCAP_CUDA(cudaMallocHost(&pinned_, pinned_bytes_));
  staging_pool_ = std::make_unique<BoundedPool>(staging_bytes_, ALIGNMENT);
  pinned_pool_ = std::make_unique<BoundedPool>(pinned_bytes_, ALIGNMENT);
}

void CapturePipeline::reclaim_staging(bool wait_for_oldest) {
  while (!staged_in_flight_.empty()) {
    const StagedCopy oldest = staged_in_flight_.front();
    const cudaError_t status = wait_for_oldest ? cudaEventSynchronize(oldest.copied) : cudaEventQuery(oldest.copied);
    if (status == cudaErrorNotReady) return;
    check_cuda(status, "the copy of a capture to the host");
    staged_in_flight_.pop_front();
    staging_pool_->release(oldest.region);
    give_event(oldest.copied);
    wait_for_oldest = false;
  }
}

BoundedPool::Region CapturePipeline::acquire_staging(size_t bytes) {
  reclaim_staging(false);
  for (;;) {
    if (std::optional<BoundedPool::Region> region = staging_pool_->try_acquire(bytes)) return *region;
    if (staged_in_flight_.empty()) internal_error("the capture staging pool is full with no copy in flight");
    reclaim_staging(true);
  }
}

cudaEvent_t CapturePipeline::take_event() {
  {
    std::lock_guard lock(events_mutex_);
    if (!free_events_.empty()) {
      cudaEvent_t event = free_events_.back();
      free_events_.pop_back();
      return event;
    }
  }
  cudaEvent_t event = nullptr;
  ACTCAP_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  return event;
}

void CapturePipeline::give_event(cudaEvent_t event) {
  std::lock_guard lock(events_mutex_);
  free_events_.push_back(event);
}

void CapturePipeline::capture(const void* src, int64_t elements, std::function<void(const float*)> deliver) {
  auto target = std::make_shared<std::function<void(const float*)>>(std::move(deliver));
  if (elements <= 0) {
    delivery_.post([target] {
      static const float nothing = 0.0f;
      (*target)(&nothing);
    });
    return;
  }
  if (!staging_pool_) allocate_pools();
  const int64_t piece_elements = int64_t(piece_bytes_ / sizeof(float));
  const int64_t pieces = (elements + piece_elements - 1) / piece_elements;
  const size_t element_bytes = dtype_size(dtype_);
  for (int64_t piece = 0; piece < pieces; ++piece) {
    const int64_t first = piece * piece_elements, count = std::min(piece_elements, elements - first);
    const size_t bytes = size_t(count) * sizeof(float);
    const BoundedPool::Region staged = acquire_staging(bytes);
    bool staged_handed_over = false;
    std::optional<BoundedPool::Region> pinned;
    cudaEvent_t copied = nullptr;
    try {
      float* staged_at = staging_ + staged.offset / sizeof(float);
      const void* from = static_cast<const char*>(src) + size_t(first) * element_bytes;
      if (dtype_ == DType::F32)
        ACTCAP_CUDA(cudaMemcpyAsync(staged_at, from, bytes, cudaMemcpyDeviceToDevice, compute_));
      else
        launch_to_f32(dtype_, from, staged_at, count, compute_);
      ACTCAP_CUDA(cudaEventRecord(snapshot_, compute_));
      ACTCAP_CUDA(cudaStreamWaitEvent(copy_, snapshot_, 0));

      pinned = pinned_pool_->acquire(bytes);
      float* host = pinned_ + pinned->offset / sizeof(float);
      ACTCAP_CUDA(cudaMemcpyAsync(host, staged_at, bytes, cudaMemcpyDeviceToHost, copy_));
      cudaEvent_t staging_free = take_event();
      if (const cudaError_t status = cudaEventRecord(staging_free, copy_); status != cudaSuccess) {
        give_event(staging_free);
        check_cuda(status, "cudaEventRecord(staging_free, copy_)");
      }
      staged_in_flight_.push_back(StagedCopy{staging_free, staged});
      staged_handed_over = true;
      copied = take_event();
      ACTCAP_CUDA(cudaEventRecord(copied, copy_));

      const bool whole = pieces == 1, last = piece + 1 == pieces;
      const BoundedPool::Region pinned_region = *pinned;
      delivery_.post(
          [this, target, host, copied, first, count, elements, whole, last] {
            ACTCAP_CUDA(cudaSetDevice(device_));
            ACTCAP_CUDA(cudaEventSynchronize(copied));
            if (whole) {
              (*target)(host);
              return;
            }
            if (assembled_.size() < size_t(elements)) assembled_.resize(size_t(elements));
            std::memcpy(assembled_.data() + first, host, size_t(count) * sizeof(float));
            if (last) (*target)(assembled_.data());
          },
          [this, pinned_region, copied] {
            pinned_pool_->release(pinned_region);
            give_event(copied);
          });
    } catch (...) {
      if (!staged_handed_over) staging_pool_->release(staged);
      if (pinned) pinned_pool_->release(*pinned);
      if (copied) give_event(copied);
      throw;
    }
  }
}

void CapturePipeline::synchronize() { delivery_.wait(); }

}  // namespace actcap::ops::cuda
