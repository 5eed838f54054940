#pragma once
// A causal language model loaded from a Hugging Face folder, computing every activation the way transformers
// does (fp32, eager attention), and delivering the ones a capture selects as they are computed.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint.h"
#include "models/config.h"
#include "ops/ops.h"

namespace actcap {

class ActivationSink;
struct SiteSelection;

// One sequence's keys (after rotary) and values, per layer, [capacity, n_kv_heads, head_dim]; grows as needed.
struct KVCache {
  std::vector<Tensor> keys, values;
  int64_t length = 0;    // positions held
  int64_t capacity = 0;  // positions allocated
};

// Where a forward pass delivers activations: the sites `selection` wants (all when null) go to `sink` as rows
// of sequence `sequence`. A default CaptureTarget captures nothing.
struct CaptureTarget {
  const SiteSelection* selection = nullptr;
  ActivationSink* sink = nullptr;
  int sequence = 0;
  bool wants(std::string_view site) const;
  void emit(const std::string& site, int64_t first_position, const float* data, Shape rows_shape) const;
};

// Where a model's weights come from: a folder's checkpoint or a synthetic one.
struct ModelSource {
  std::string dir;
  std::shared_ptr<Checkpoint> checkpoint;
  std::string config_text;  // synthetic models only
};

struct LoadOptions {
  // Reproduce a model that was cast to its checkpoint dtype and back (model.to(torch.bfloat16).float()), which
  // rounds the rotary inverse frequencies; transformers' from_pretrained keeps them fp32 (the default here).
  bool rope_frequencies_in_checkpoint_dtype = false;
};

class Model {
 public:
  // Reads DIR/config.json, DIR/generation_config.json and the safetensors weights; the architecture comes from
  // model_type (gpt2, llama, mistral, qwen2, qwen3, opt). Throws actcap::Error naming the file and the problem.
  static std::unique_ptr<Model> load(const std::string& dir, const LoadOptions& options = {});
  // A model of the architecture and shape `config_json` describes (config.json text) with pseudo-random weights
  // (Checkpoint::synthetic), for benchmarks and tests. dir() is "<synthetic>".
  static std::unique_ptr<Model> synthetic(const std::string& config_json, uint64_t seed);
  static std::vector<std::string> supported_model_types();
  virtual ~Model();

  virtual const ModelConfig& config() const = 0;
  virtual std::vector<std::string> site_names() const = 0;  // every site it produces, in forward order

  const std::string& dir() const { return dir_; }
  std::string config_sha256() const;   // of config.json
  std::string weights_sha256() const;  // of the weight files' bytes, in order (computed on first call)

  // Runs the next tokens of one sequence, appending them to `cache`; returns the logits of the last new
  // position, [vocab_size]. Every selected site is delivered through `capture` as it is computed.
  // Throws actcap::Error on an empty step, a token outside the vocabulary or too many positions.
  Tensor forward(std::span<const int32_t> tokens, KVCache& cache, const CaptureTarget& capture = {});
  KVCache new_cache(int64_t capacity = 0) const;
  // The most positions a sequence may have (learned position tables), or 0 when unbounded.
  virtual int64_t max_positions() const { return 0; }

 protected:
  Model(const ModelSource& source, ModelConfig config);
  // Processes tokens at positions [cache.length, cache.length + n) (the cache already has room and its length is
  // advanced by the caller afterwards); returns the last position's logits.
  virtual Tensor run(std::span<const int32_t> tokens, KVCache& cache, const CaptureTarget& capture) = 0;
  // The fp32 weight `name` of the expected shape (errors name the checkpoint file and tensor).
  TensorView weight(const std::string& name, const Shape& shape);
  bool has_weight(const std::string& name) const { return checkpoint_->contains(name); }
  void reserve(KVCache& cache, int64_t positions) const;
  // The logits of the last of `rows` final hidden rows, [vocab_size]. Every row's logits are computed (and
  // delivered as site "logits") only when the capture wants them; the returned row is always computed alone,
  // so the chosen tokens never depend on what is captured.
  Tensor lm_head_logits(const ops::Linear& head, const float* hidden, int64_t rows, int64_t first_position,
                        const CaptureTarget& capture) const;

  ModelConfig config_;

 private:
  std::string dir_;
  std::string config_sha256_;  // of the synthetic config text; computed from the file otherwise
  std::shared_ptr<Checkpoint> checkpoint_;
  mutable std::string weights_sha256_;
};

}  // namespace actcap
