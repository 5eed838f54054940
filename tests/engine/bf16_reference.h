#pragma once
// The llama reference's bf16 run (keys `bf16.*`, tests/data/reference/README.md) as the engine reproduces it,
// shared by the CPU and CUDA bf16 engine tests.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/atomic_file.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "io/safetensors.h"

namespace actcap::testing {

// One unit in the last place of bf16 (8 significant bits) at the magnitude of x.
inline double bf16_ulp(double x) { return x > 0 ? std::ldexp(1.0, std::ilogb(x) - 7) : std::ldexp(1.0, -133); }

// HF's bf16 run of the llama reference is model.to(torch.bfloat16) on the fp32 model: weights AND the rotary
// inverse frequencies (a buffer) rounded to bf16, then every operation in bf16. That model is what
// save_pretrained would write after the cast: a bfloat16 checkpoint, read with rope_frequencies_in_checkpoint_dtype.
// Writes it into `dir`.
inline void write_bf16_cast_of(const std::filesystem::path& source, const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(source / "generation_config.json", dir / "generation_config.json");
  fs::permissions(dir / "generation_config.json", fs::perms::owner_read | fs::perms::owner_write);
  nlohmann::json config = nlohmann::json::parse(read_file((source / "config.json").string()));
  config.erase("torch_dtype");
  config["dtype"] = "bfloat16";
  write_file_atomic((dir / "config.json").string(), config.dump(2));
  SafetensorsFile weights((source / "model.safetensors").string());
  SafetensorsWriter cast;
  for (const auto& name : weights.names()) {
    const Tensor f32 = Tensor::to_f32(weights.view(name));
    std::vector<uint16_t> bf16(size_t(f32.numel()));
    convert_from_f32(f32.f32(), DType::BF16, bf16.data(), bf16.size());  // round to nearest even, as .to() does
    cast.add(name, DType::BF16, f32.shape(), bf16.data());
  }
  cast.write((dir / "model.safetensors").string());
}

}  // namespace actcap::testing
