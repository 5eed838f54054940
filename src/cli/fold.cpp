// actcap fold --model DIR --spec transforms.json --out DIR: folds residual rotations and head / neuron
// permutations into a Llama-family checkpoint (transform/fold.h), writing a new Hugging Face folder.
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "io/hub.h"
#include "transform/fold.h"

namespace actcap::cli {
namespace {

void run(FoldOptions options, const std::string& dtype) {
  if (!dtype.empty()) options.dtype = dtype == "f32" ? DType::F32 : dtype == "bf16" ? DType::BF16 : DType::F16;
  options.model_dir = resolve_model(options.model_dir).dir;  // a folder, or org/name[@revision] from the hub cache
  const FoldSummary s = fold_checkpoint(options);
  fmt::print("wrote {}: {} tensors in {} file{}\n", options.out_dir, s.tensors, s.files, s.files == 1 ? "" : "s");
  if (s.rotated)
    fmt::print("  residual rotation: {}; RMSNorm weights folded into the adjacent linear layers (now 1)\n",
               s.shared_rotation ? "one shared rotation (function preserved)"
                                 : "per-layer rotations (the function CHANGES: see docs/TRANSPORT.md)");
  if (s.head_permutations) fmt::print("  attention-head permutations: {} layer(s)\n", s.head_permutations);
  if (s.neuron_permutations) fmt::print("  MLP neuron permutations: {} layer(s)\n", s.neuron_permutations);
  for (const std::string& change : s.config_changes) fmt::print("  config.json: {}\n", change);
}

CommandRegistration registration(
    "fold", "fold residual rotations and head/neuron permutations into a Llama-family checkpoint",
    [](CLI::App& command) {
      auto options = std::make_shared<FoldOptions>();
      auto dtype = std::make_shared<std::string>();
      command.add_option("--model", options->model_dir, "the Hugging Face model folder")->required();
      command.add_option("--spec", options->spec_path, "transforms.json (per layer: rotation_path, "
                                                       "head_permutation_path, neuron_permutation_path, head_dim)")
          ->required();
      command.add_option("--out", options->out_dir, "the new model folder (must not exist)")->required();
      command.add_option("--dtype", *dtype, "the weights' dtype (default: as in the source); a rotation of a bf16 or "
                                           "fp16 checkpoint is exact only in f32")
          ->check(CLI::IsMember({"f32", "bf16", "f16"}));
      command.add_flag("--allow-function-change", options->allow_function_change,
                       "fold rotations that differ from layer to layer (changes the model's function)");
      command.footer(
          "Architectures: llama, mistral, qwen2, qwen3. A rotation R [hidden, hidden] maps each residual vector h\n"
          "to h·R; the same R on every layer preserves the function exactly (up to rounding), a permutation p\n"
          "makes new index i the old index p[i]. Transform files: .npy, .pt, .safetensors (actcap rotation's\n"
          "transport files: their linear_map). Weights keep their dtype; see docs/TRANSPORT.md.\n"
          "Example: actcap fold --model Qwen/Qwen2.5-0.5B --spec runs/x/transforms.json --out runs/x/checkpoints/rotated");
      command.callback([options, dtype] { run(*options, *dtype); });
    });

}  // namespace
}  // namespace actcap::cli
