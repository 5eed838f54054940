#include "ops/cuda/stream_memory.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ops/cuda/cuda_check.h"

namespace actcap::ops::cuda {
namespace {

constexpr int MAX_DEVICES = 64;
std::array<std::atomic<int>, MAX_DEVICES> pool_state{};  // 0 unknown, 1 pools, 2 no pools

int current_device() {
  int device = 0;
  ACTCAP_CUDA(cudaGetDevice(&device));
  return device;
}

bool pools_forced_off() {
  const char* value = std::getenv("ACTCAP_CUDA_MEMORY_POOLS");
  return value && std::strcmp(value, "0") == 0;
}

}  // namespace

bool uses_memory_pools(int device) {
  if (device < 0 || device >= MAX_DEVICES) internal_error("CUDA device index out of range");
  int state = pool_state[size_t(device)].load();
  if (state == 0) {
    int supported = 0;
    ACTCAP_CUDA(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device));
    state = supported && !pools_forced_off() ? 1 : 2;
    if (state == 1) {
      // Keep freed memory cached in the pool between batches rather than returning it to the driver at every
      // synchronisation.
      cudaMemPool_t pool = nullptr;
      ACTCAP_CUDA(cudaDeviceGetDefaultMemPool(&pool, device));
      uint64_t keep = UINT64_MAX;
      ACTCAP_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    }
    pool_state[size_t(device)].store(state);
  }
  return state == 1;
}

void* stream_allocate(size_t bytes, cudaStream_t stream) {
  void* p = nullptr;
  if (uses_memory_pools(current_device()))
    ACTCAP_CUDA(cudaMallocAsync(&p, bytes, stream));
  else
    ACTCAP_CUDA(cudaMalloc(&p, bytes));
  return p;
}

void stream_free(void* p, cudaStream_t stream) noexcept {
  if (!p) return;
  int device = 0;  // the allocation decided pools or not for this device: read that, never query (no throw)
  if (cudaGetDevice(&device) == cudaSuccess && device >= 0 && device < MAX_DEVICES &&
      pool_state[size_t(device)].load() == 1) {
    cudaFreeAsync(p, stream);
    return;
  }
  cudaStreamSynchronize(stream);  // errors here are the stream's, reported by its next synchronisation
  cudaFree(p);
}

}  // namespace actcap::ops::cuda
