#pragma once
// Safetensors files too big to hold in memory, written in one pass from tensors produced on the fly (random
// checkpoints of real shapes). Defined in safetensors.cpp, which shares its header builder with the other writers;
// a header of its own so that the many includers of io/safetensors.h do not depend on it.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace actcap {

// A tensor whose bytes `produce` hands to `put` in order, in pieces of any size: for files too big to hold.
struct SafetensorsProducer {
  std::string name;
  DType dtype;
  Shape shape;
  std::function<void(const std::function<void(const void*, size_t)>& put)> produce;
};

// Writes one safetensors file atomically in one pass: the header from the declared shapes, then each tensor's
// produced bytes (hashed on the way). Throws actcap::Error naming the file when a tensor produces other than
// its shape's byte count.
SafetensorsWriter::Written write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                                             const std::vector<SafetensorsProducer>& tensors);

}  // namespace actcap
