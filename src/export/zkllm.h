#pragma once
// zkLLM fixed-point files: raw little-endian int32 of round(x * 2^b) (b = 16 by default, zkLLM's scale; ties to
// even, as torch.round and np.round do), row-major, no header; a value outside int32 after scaling is an error,
// never a wrap.
//
// Activations, per Llama layer i, named as the FYP-zkLLM capture tooling writes them (the prover's drivers read
// these names; a missing file is silently replaced by random data upstream, so the names must be exact):
//   layer-{i}-input-rmsnorm-activation.bin           blocks.{i}.hook_resid_pre        (block input)
//   layer-{i}-self-attn-activation.bin               blocks.{i}.ln1.hook_normalized   (input-norm output)
//   layer-{i}-post_attention-rmsnorm-activation.bin  blocks.{i}.hook_resid_mid        (post-attention residual)
//   layer-{i}-ffn-activation.bin                     blocks.{i}.ln2.hook_normalized   (post-attention-norm output)
//   layer-{i}-block-input.bin                        blocks.{i}.hook_resid_pre        (block input, for the skip proof)
//   layer-{i}-block-output.bin                       blocks.{i}.hook_resid_post       (block output)
// each [seq_len, hidden] with the batch dimension dropped.
// Weights, as zkLLM's llama-commit.py writes them: for every parameter `name` of model.layers.{i}
// (named_parameters order does not matter: the name is in the file), layer-{i}-{name}-int.bin, e.g.
// layer-0-self_attn.q_proj.weight-int.bin; matrices transposed from HF's [out, in] to [in, out].
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace actcap {

inline constexpr int kZkllmDefaultScaleBits = 16;
inline constexpr int kZkllmMaxScaleBits = 30;  // beyond, |x| >= 2 no longer fits in int32
// Throws actcap::Error unless 0 <= bits <= kZkllmMaxScaleBits.
void check_zkllm_scale_bits(int bits);

struct ZkllmActivation {
  const char* file_suffix;  // "input-rmsnorm-activation"
  const char* site_suffix;  // "hook_resid_pre"
  const char* meaning;      // "block input"
};
const std::vector<ZkllmActivation>& zkllm_activations();  // the six, in the table's order
std::string zkllm_activation_file(int layer, const ZkllmActivation& activation);
std::string zkllm_activation_site(int layer, const ZkllmActivation& activation);
std::string zkllm_weight_file(int layer, const std::string& parameter);  // layer-{i}-{parameter}-int.bin

// round(x * 2^scale_bits) of every value (F32, F16 or BF16) into out[0, numel). Throws actcap::Error naming
// `what` and the element's position for a value outside int32 (or NaN/Inf).
void to_zkllm_fixed_point(const TensorView& values, int32_t* out, const std::string& what,
                          int scale_bits = kZkllmDefaultScaleBits);

// Writes [rows, d] values as int32 to `path` atomically, followed by (padded_rows - rows) rows of zeros.
void write_zkllm_activation(const std::string& path, const TensorView& rows, int64_t padded_rows,
                            const std::string& what, int scale_bits);

struct ZkllmWeight {
  int layer = 0;
  std::string parameter, tensor, file;  // "self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight"
  Shape original_shape, written_shape;
  std::string dtype;
};
// Writes every parameter of model.layers.{0..} found in the checkpoint in `model_dir`.
std::vector<ZkllmWeight> write_zkllm_weights(const std::string& model_dir, const std::string& out_dir, int scale_bits);

bool is_power_of_two(int64_t n);

}  // namespace actcap
