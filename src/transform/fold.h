#pragma once
// Folds residual-stream rotations and attention-head / MLP-neuron permutations (transform_spec.h) into a
// Llama-family checkpoint (llama, mistral, qwen2, qwen3), writing a complete Hugging Face folder.
//
// With a rotation R on every layer (one shared R: the function is preserved exactly, up to rounding):
//   1. each RMSNorm weight w is folded into the linear layers that read its output (W ← W·diag(w)) and set to 1,
//      since RMSNorm commutes with an orthogonal R only without its weight (rms(h·R) = rms(h));
//   2. layers that read the residual stream (embedding rows, q/k/v, gate/up, lm_head) become W·R (as [out, in]),
//      layers that write it (o_proj, down_proj) Rᵀ·W and their biases b·R.
// hidden_states.k (k < L) of the folded model is then hidden_states.k · R; hidden_states.L, the final norm's
// output, is that without the norm's weight (now folded into lm_head). A tied lm_head is untied (it is no longer
// the embedding). qwen3's q/k norms act inside each head, after q/k_proj: a residual rotation never reaches them,
// and since one weight serves every head they allow any head permutation. Permutations move rows / columns only
// (exact, no rounding). Layers whose rotations differ change the function (docs/TRANSPORT.md); they are refused
// unless allow_function_change.
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace actcap {

struct FoldOptions {
  std::string model_dir, spec_path, out_dir;
  bool allow_function_change = false;  // per-layer (non-shared) rotations
  // The weights' dtype (F32, F16, BF16); default: each tensor's own. A rotation rounds every weight it touches
  // into this dtype once: in a 16-bit checkpoint that is a 16-bit rounding error, F32 keeps the function.
  std::optional<DType> dtype;
};

struct FoldSummary {
  int64_t tensors = 0, files = 0;
  bool rotated = false, shared_rotation = true, untied_lm_head = false;
  int64_t head_permutations = 0, neuron_permutations = 0;
  std::vector<std::string> config_changes;  // "tie_word_embeddings: true -> false"
};

// Writes OUT atomically (OUT.tmp-<pid>, renamed when complete); OUT must not exist. Weights keep the source's
// dtype (unless options.dtype) and file layout; config.json gets only the changes listed; every other file (tokenizer, generation
// config, ...) is copied; actcap_fold.json records the source, the spec and what was done. Throws actcap::Error
// naming the file and the problem (unsupported architectures by name).
FoldSummary fold_checkpoint(const FoldOptions& options);

}  // namespace actcap
