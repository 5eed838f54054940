#pragma once
// torch.save's zip format, written without Python, loadable by torch.load(path, weights_only=True) (torch 1.13
// and 2.x): ARCHIVE/data.pkl is the pickled object in which each tensor is
// torch._utils._rebuild_tensor_v2(persistent_id(('storage', torch.<Type>Storage, key, 'cpu', numel)), 0, size,
// stride, False, collections.OrderedDict()), ARCHIVE/data/<key> holds the storage's raw little-endian bytes
// (64-byte aligned), ARCHIVE/byteorder "little" and ARCHIVE/version "3". The pickle uses only the opcodes and
// globals torch's weights_only unpickler allows.
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/pickle.h"

namespace actcap {

class TorchArchive {
 public:
  // The object is built on pickle(); tensor() pushes one tensor onto it.
  PickleWriter& pickle() { return pickle_; }
  // A contiguous tensor of `shape` (same element count as data) over data's bytes, which are borrowed until
  // write() returns; tensors over the same bytes share one storage. Dtypes: F32, F16, BF16, F64, I64, I32, I16,
  // I8, U8, BOOL.
  void tensor(const TensorView& data, const Shape& shape);
  // Writes the archive atomically. The archive folder inside the zip is the file name without its extension,
  // as torch.save names it.
  void write(const std::string& path);

 private:
  PickleWriter pickle_;
  std::vector<TensorView> storages_;
};

// One record as the original capture tool's `<model>_activations.pt`, extended: a dict with model_name,
// prompt, generated_text (None when absent), token_sequence (int64, (1, seq_len)), hidden_states (only when
// given: a tuple, index 0 the embedding output and i the output of block i-1, the last one HF's final-norm
// output; each (1, seq_len, hidden)), then record (int), positions (int64 (T_kept,): the positions the rows
// below hold) and activations (a dict site -> tensor in HF's batch-of-one layout, (1, T_kept, ...), attention
// patterns (1, H, T_kept, seq_len)). Tensors keep the stored dtype (bf16 stays bf16); a site that is also a
// hidden state shares its storage.
struct TorchActivations {
  std::string model_name;
  std::optional<std::string> prompt, generated_text;
  std::vector<int64_t> token_sequence;
  std::vector<TensorView> hidden_states;  // [seq_len, hidden] each
  int64_t record = 0;
  std::vector<int64_t> positions;
  std::vector<std::pair<std::string, TensorView>> activations;  // shapes as written
};
void write_torch_activations(const std::string& path, const TorchActivations& activations);

// The `<model>` in the original tools' file names (`<model>_activations.pt`, `<model>_stats.json`): the model
// folder's name ("/models/tiny-gpt2/" -> "tiny-gpt2"); "model" when there is none.
std::string model_file_prefix(const std::string& model_path);

}  // namespace actcap
