#include "export/zkllm.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "export/integers.h"
#include "export/site_arrays.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace actcap {

const std::vector<ZkllmActivation>& zkllm_activations() {
  static const std::vector<ZkllmActivation> table = {
      {"input-rmsnorm-activation", "hook_resid_pre", "block input"},
      {"self-attn-activation", "ln1.hook_normalized", "input-norm output"},
      {"post_attention-rmsnorm-activation", "hook_resid_mid", "post-attention residual"},
      {"ffn-activation", "ln2.hook_normalized", "post-attention-norm output"},
      {"block-input", "hook_resid_pre", "block input"},
      {"block-output", "hook_resid_post", "block output"},
  };
  return table;
}

std::string zkllm_activation_file(int layer, const ZkllmActivation& activation) {
  return fmt::format("layer-{}-{}.bin", layer, activation.file_suffix);
}

std::string zkllm_activation_site(int layer, const ZkllmActivation& activation) {
  return fmt::format("blocks.{}.{}", layer, activation.site_suffix);
}

std::string zkllm_weight_file(int layer, const std::string& parameter) {
  return fmt::format("layer-{}-{}-int.bin", layer, parameter);
}

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

void check_zkllm_scale_bits(int bits) {
  if (bits < 0 || bits > kZkllmMaxScaleBits)
    fail("--scale-bits {}: must be between 0 and {} (values are round(x * 2^bits) in int32; zkLLM uses 16)", bits,
         kZkllmMaxScaleBits);
}

void to_zkllm_fixed_point(const TensorView& values, int32_t* out, const std::string& what, int scale_bits) {
  check_zkllm_scale_bits(scale_bits);
  const double scale = std::ldexp(1.0, scale_bits);
  const int64_t n = values.numel();
  std::vector<float> block;
  constexpr int64_t kBlock = 1 << 16;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t count = std::min(kBlock, n - begin);
    block.resize(size_t(count));
    convert_to_f32(static_cast<const uint8_t*>(values.data) + size_t(begin) * dtype_size(values.dtype), values.dtype,
                   block.data(), block.size());
    for (int64_t i = 0; i < count; ++i) {
      // x * 2^b is exact in double; nearbyint rounds half to even in the default rounding mode.
      const double scaled = std::nearbyint(double(block[size_t(i)]) * scale);
      if (!(scaled >= -2147483648.0 && scaled <= 2147483647.0))
        fail("{}: value {} at position {} is outside int32 after scaling by 2^{}", what, block[size_t(i)],
             position_string(values.shape, begin + i), scale_bits);
      out[begin + i] = int32_t(scaled);
    }
  }
}

void write_zkllm_activation(const std::string& path, const TensorView& rows, int64_t padded_rows,
                            const std::string& what, int scale_bits) {
  if (rows.shape.size() != 2) fail("{}: expected [seq_len, hidden], got {}", what, shape_string(rows.shape));
  const int64_t d = rows.shape[1];
  std::vector<int32_t> data(size_t(checked_num_elements({std::max(padded_rows, rows.shape[0]), d}, what)), 0);
  to_zkllm_fixed_point(rows, data.data(), what, scale_bits);
  AtomicFile file(path);
  file.write(data.data(), data.size() * sizeof(int32_t));  // little-endian hosts only (x86-64, aarch64)
  file.commit();
}

std::vector<ZkllmWeight> write_zkllm_weights(const std::string& model_dir, const std::string& out_dir, int scale_bits) {
  Checkpoint checkpoint(model_dir);
  static const std::regex layer_re(R"(^model\.layers\.(\d+)\.(.+)$)");
  std::map<std::pair<int, std::string>, std::pair<size_t, std::string>> found;  // (layer, param) -> (file, tensor)
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  for (const std::string& path : checkpoint.files()) {
    files.push_back(std::make_unique<SafetensorsFile>(path));
    for (const std::string& name : files.back()->names()) {
      std::smatch m;
      if (std::regex_match(name, m, layer_re)) found[{std::stoi(m[1]), m[2]}] = {files.size() - 1, name};
    }
  }
  if (found.empty()) fail("{}: no model.layers.* weights in {}", model_dir, checkpoint.describe());

  std::vector<ZkllmWeight> written;
  for (const auto& [key, where] : found) {
    const SafetensorsFile& file = *files[where.first];
    const TensorView view = file.view(where.second);
    ZkllmWeight weight;
    weight.layer = key.first;
    weight.parameter = key.second;
    weight.tensor = where.second;
    weight.file = zkllm_weight_file(key.first, key.second);
    weight.original_shape = view.shape;
    weight.dtype = std::string(dtype_name(view.dtype));
    const std::string what = file.path() + ": " + where.second;
    if (view.dtype != DType::F32 && view.dtype != DType::F16 && view.dtype != DType::BF16)
      fail("{}: dtype {} is not a float weight", what, dtype_name(view.dtype));
    std::vector<int32_t> scaled(size_t(checked_num_elements(view.shape, what)));
    to_zkllm_fixed_point(view, scaled.data(), what, scale_bits);
    std::vector<int32_t> out;
    if (view.shape.size() == 2) {  // [out, in] -> [in, out]
      const int64_t rows = view.shape[0], cols = view.shape[1];
      out.resize(scaled.size());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) out[size_t(c * rows + r)] = scaled[size_t(r * cols + c)];
      weight.written_shape = {cols, rows};
    } else {
      out = std::move(scaled);
      weight.written_shape = view.shape;
    }
    AtomicFile output((std::filesystem::path(out_dir) / weight.file).string());
    output.write(out.data(), out.size() * sizeof(int32_t));
    output.commit();
    written.push_back(std::move(weight));
  }
  return written;
}

}  // namespace actcap
