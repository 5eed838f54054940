#include "capture/steering_vectors.h"

#include <charconv>
#include <filesystem>

#include "core/error.h"
#include "core/sha256.h"
#include "core/tensor.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

// N of "direction.N", or -1.
int direction_block(const std::string& name) {
  constexpr std::string_view prefix = "direction.";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size();
  int block = -1;
  auto [end, error] = std::from_chars(first, last, block);
  return error == std::errc() && end == last ? block : -1;
}

void add_direction(SteeringFile& file, const std::string& name, const Shape& shape, std::vector<float> values) {
  const int block = direction_block(name);
  if (block < 0)
    fail("{}: tensor '{}' is not a control vector direction (direction.N, N = 0, 1, ...)", file.path, name);
  if (shape.size() != 1)
    fail("{}: {} must be 1-D (n_embd values), it has {} dimensions", file.path, name, shape.size());
  if (!file.directions.empty() && file.directions.begin()->second.size() != values.size())
    fail("{}: {} has {} values but direction.{} has {}: all directions must have the same length", file.path, name,
         values.size(), file.directions.begin()->first, file.directions.begin()->second.size());
  file.directions[block] = std::move(values);
}

void read_safetensors(SteeringFile& file) {
  const SafetensorsFile tensors(file.path);
  for (const std::string& name : tensors.names()) {
    const TensorView view = tensors.view(name);
    if (view.dtype != DType::F32 && view.dtype != DType::BF16 && view.dtype != DType::F16)
      fail("{}: {} is {}; control vectors are F32, BF16 or F16", file.path, name, dtype_name(view.dtype));
    const Tensor f32 = Tensor::to_f32(view);
    add_direction(file, name, view.shape, std::vector<float>(f32.f32(), f32.f32() + f32.numel()));
  }
}

// The tensors as llama.cpp's control-vector loader reads them: F32 (the reader refuses other types), 1-D as
// ggml counts dimensions (trailing 1s do not count).
void read_gguf(SteeringFile& file) {
  const gguf::File gguf = gguf::read(file.path);
  for (const gguf::F32Tensor& tensor : gguf.tensors) {
    Shape shape;
    for (uint64_t n : tensor.ne) shape.push_back(int64_t(n));
    while (shape.size() > 1 && shape.back() == 1) shape.pop_back();
    add_direction(file, tensor.name, shape, tensor.data);
  }
}

}  // namespace

SteeringFile read_steering_file(const std::string& path) {
  if (!fs::is_regular_file(path)) fail("{}: no such control vector file", path);
  SteeringFile file;
  file.path = fs::weakly_canonical(fs::absolute(path)).string();
  const std::string extension = fs::path(path).extension().string();
  if (extension == ".gguf") {
    read_gguf(file);
  } else if (extension == ".safetensors") {
    read_safetensors(file);
  } else {
    fail("{}: a control vector must be a .gguf or .safetensors file", path);
  }
  if (file.directions.empty()) fail("{}: holds no direction.N tensor", path);
  file.sha256 = sha256_file(path);
  return file;
}

}  // namespace actcap
