#pragma once
// Device memory in stream order: cudaMallocAsync/cudaFreeAsync from the device's pool where the GPU supports
// memory pools; where it does not (some virtualised GPUs report cudaDevAttrMemoryPoolsSupported = 0), plain
// cudaMalloc, and a free that first waits for the work queued on the stream, which may still read the memory.
// ACTCAP_CUDA_MEMORY_POOLS=0 forces the fallback (so that it can be tested on any GPU).
#include <cuda_runtime.h>

#include <cstddef>

namespace actcap::ops::cuda {

// Whether `device` allocates from memory pools (checked once per device); keeps freed pool memory cached.
bool uses_memory_pools(int device);
// On the current device. Throws actcap::Error on failure.
void* stream_allocate(size_t bytes, cudaStream_t stream);
// Never throws: called from destructors and buffer releases.
void stream_free(void* p, cudaStream_t stream) noexcept;

}  // namespace actcap::ops::cuda
