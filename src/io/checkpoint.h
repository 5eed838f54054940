#pragma once
// A Hugging Face checkpoint's weights: model.safetensors, or the shards listed by model.safetensors.index.json,
// memory-mapped. Weights are handed out as fp32: F32 tensors are zero-copy views into the map, F16/BF16 ones
// are upcast once (exactly) into owned buffers.
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace actcap {

class Checkpoint {
 public:
  // Throws actcap::Error naming the file when neither weights file exists or one is malformed.
  explicit Checkpoint(const std::string& dir);
  // A checkpoint without files that holds every tensor asked for, filled with reproducible pseudo-random values
  // (1-D weights near 1, biases near 0, matrices uniform with standard deviation 0.05): for benchmarks and tests
  // of models of real shapes without downloading them.
  static std::unique_ptr<Checkpoint> synthetic(uint64_t seed);

  bool contains(const std::string& name) const { return synthetic_ || index_.count(name) != 0; }
  // The fp32 weight `name`; throws actcap::Error naming the file, the tensor and the expected shape when it is
  // missing or shaped differently.
  TensorView f32(const std::string& name, const Shape& expected);
  // The weight `name` as stored (F32, F16 or BF16), without conversion; same errors as f32().
  TensorView view(const std::string& name, const Shape& expected);
  const std::vector<std::string>& files() const { return paths_; }  // weight files, in index order
  std::string describe() const;  // the file to name in messages about a missing tensor

 private:
  Checkpoint() = default;
  std::string dir_;
  bool synthetic_ = false;
  uint64_t seed_ = 0;
  std::vector<std::string> paths_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> index_;  // tensor name -> file
  std::deque<Tensor> upcast_;
};

}  // namespace actcap
