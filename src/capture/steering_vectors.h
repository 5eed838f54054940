#pragma once
// Control vectors as llama.cpp's --control-vector and repeng read and write them: one tensor "direction.N" per
// block N (HF's model.layers[N]), 1-D with n_embd values, in a GGUF file or a safetensors file with the same
// tensor names (F32, BF16 or F16 there; converted to F32).
#include <map>
#include <string>
#include <vector>

namespace actcap {

struct SteeringFile {
  std::string path;    // canonical, absolute
  std::string sha256;  // of the file's bytes
  std::map<int, std::vector<float>> directions;  // block N -> direction.N
};

// Reads FILE.gguf or FILE.safetensors (by extension). Throws actcap::Error naming the file for a missing or
// malformed file, a tensor not named direction.N (N a block number, 0 or more), one that is not 1-D, or
// directions of different lengths (llama.cpp refuses all of these too).
SteeringFile read_steering_file(const std::string& path);

}  // namespace actcap
