#pragma once
// A causal language model loaded from a Hugging Face folder, computing every activation the way transformers
// does (eager attention) on a backend (CPU fp32; CUDA fp32/bf16/fp16), and delivering the ones a capture selects
// as they are computed.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint.h"
#include "models/config.h"
#include "ops/backend.h"

namespace actcap {

class ActivationEditor;
class ActivationSink;
struct SiteSelection;

// One sequence's keys (after rotary) and values, per layer, [capacity, n_kv_heads, head_dim] in the model's
// backend memory; grows as needed. It must not outlive the model that made it.
struct KVCache {
  std::vector<ops::Buffer> keys, values;
  int64_t length = 0;    // positions held
  int64_t capacity = 0;  // positions allocated
};

// Which activations a forward pass delivers, and to whom: the sites `selection` wants (all when null) go to
// `sink`. A default CaptureTarget captures nothing.
struct CaptureTarget {
  const SiteSelection* selection = nullptr;
  ActivationSink* sink = nullptr;
  bool wants(std::string_view site) const;
};

// The next tokens of one sequence in a batched forward pass; `sequence` is the id the sink receives.
struct SequenceStep {
  std::span<const int32_t> tokens;
  KVCache* cache = nullptr;
  int sequence = 0;
};

// Where a model's weights come from: a folder's checkpoint or a synthetic one.
struct ModelSource {
  std::string dir;
  std::shared_ptr<Checkpoint> checkpoint;
  std::string config_text;  // synthetic models only
};

struct LoadOptions {
  ops::BackendOptions backend;  // where and in which dtype to compute (default: CPU, fp32)
  // Reproduce a model that was cast to its checkpoint dtype and back (model.to(torch.bfloat16).float()), which
  // rounds the rotary inverse frequencies; transformers' from_pretrained keeps them fp32 (the default here).
  bool rope_frequencies_in_checkpoint_dtype = false;
};

class Model {
 public:
  // Reads DIR/config.json, DIR/generation_config.json and the safetensors weights; the architecture is
  // model_type's row in models/registry.h. Throws actcap::Error naming the file and the problem.
  static std::unique_ptr<Model> load(const std::string& dir, const LoadOptions& options = {});
  // A model of the architecture and shape `config_json` describes (config.json text) with pseudo-random weights
  // (Checkpoint::synthetic), for benchmarks and tests. dir() is "<synthetic>".
  static std::unique_ptr<Model> synthetic(const std::string& config_json, uint64_t seed,
                                          const LoadOptions& options = {});
  static std::vector<std::string> supported_model_types();
  virtual ~Model();

  virtual const ModelConfig& config() const = 0;
  virtual std::vector<std::string> site_names() const = 0;  // every site it produces, in forward order

  const std::string& dir() const { return dir_; }
  std::string config_sha256() const;   // of config.json
  std::string weights_sha256() const;  // of the weight files' bytes, in order (computed on first call)

  // Runs the next tokens of several sequences in one packed pass, appending them to their caches; returns the
  // logits of each step's last new position, [steps, vocab_size], fp32 (an empty tensor when !want_logits).
  // Every selected site is delivered to `capture`'s sink, possibly asynchronously (on CUDA) until synchronize();
  // a sequence's values never depend on the other sequences in the pass. Throws actcap::Error on an empty step,
  // a token outside the vocabulary or too many positions.
  Tensor forward(std::span<const SequenceStep> steps, const CaptureTarget& capture = {}, bool want_logits = true);
  // One sequence: its last position's logits, [vocab_size].
  Tensor forward(std::span<const int32_t> tokens, KVCache& cache, const CaptureTarget& capture = {},
                 int sequence = 0);
  // Waits until every queued op and capture delivery is done.
  void synchronize() { backend_->synchronize(); }
  KVCache new_cache(int64_t capacity = 0) const;
  // The most positions a sequence may have (learned position tables), or 0 when unbounded.
  virtual int64_t max_positions() const { return 0; }
  ops::Backend& backend() const { return *backend_; }
  // Edits every later forward pass (generation and capture alike) at the sites `editor` names, until replaced;
  // null: none. Not for the sites no later op reads (attention patterns, logits).
  void set_editor(std::shared_ptr<ActivationEditor> editor) { editor_ = std::move(editor); }

 protected:
  // What run() works on: the packed batch, each sequence's cache and sink id, and the capture.
  struct Pass {
    ops::ForwardBatch batch;
    std::vector<KVCache*> caches;
    std::vector<int> sequences;
    CaptureTarget capture;
    ActivationEditor* editor = nullptr;
    int64_t rows() const { return batch.rows(); }
    bool wants(std::string_view site) const { return capture.wants(site); }
  };

  Model(const ModelSource& source, ModelConfig config, const LoadOptions& options);
  // Computes the pass's rows (the backend has begun its batch; caches have room and their lengths are advanced
  // by the caller afterwards); returns the final hidden rows, [rows, lm_head.in], in backend memory.
  virtual const void* run(Pass& pass) = 0;
  virtual const ops::Linear& lm_head() const = 0;
  // Soft-capping of the lm_head output, tanh(logits / cap) * cap, in the logits site and the returned logits
  // (Gemma 2's final_logit_softcapping); 0 = none.
  virtual float final_logit_softcap() const { return 0.0f; }

  // Every site of a decoder: `embedding_sites` and hidden_states.0, then per layer `block_sites` under
  // "blocks.<i>." and hidden_states.<i+1> (the last is the final norm's output when `final_norm`), logits.
  std::vector<std::string> layered_site_names(const std::vector<std::string>& embedding_sites,
                                              const std::vector<std::string>& block_sites, bool final_norm) const;
  // The weight `name` of the expected shape, in backend memory (errors name the checkpoint file and tensor).
  const void* weight(const std::string& name, const Shape& shape);
  bool has_weight(const std::string& name) const { return checkpoint_->contains(name); }
  // Fails naming config.json's `key` when the checkpoint lacks the last layer's `first_weight` (e.g. n_layer
  // 1e9): called before anything is allocated per layer.
  void check_layer_count(const std::string& layer_prefix, const std::string& first_weight, const char* key) const;
  // Scratch slots 0 .. MODEL_SLOTS - 1 are the architectures'; the ones after are Model's own.
  static constexpr int MODEL_SLOTS = 16;
  // A reusable backend buffer of at least `elements` elements for scratch slot `slot` (its contents survive
  // until the slot is asked for again with more elements).
  void* scratch(int slot, int64_t elements);
  // `p` advanced by `elements` elements of the backend's dtype.
  void* at(const void* p, int64_t elements) const;
  // The point where `site` is computed and nothing has read it yet: the editor edits the packed rows
  // [rows, row_shape...] in place, then they are delivered, one slice per sequence, when the capture wants them.
  void emit(const Pass& pass, const std::string& site, void* rows, const Shape& row_shape);
  // Delivers one sequence's rows [sequence rows, row_shape...] (when the pass's sequences differ in width).
  void emit_sequence(const Pass& pass, size_t index, const std::string& site, const void* rows,
                     const Shape& row_shape);
  // A sub-block's output projection into the residual stream: out = layer(in), delivered as `site`, then
  // residual += out. `out` is scratch of [rows, layer.out].
  void add_projection(const Pass& pass, const ops::Linear& layer, const void* in, void* out, void* residual,
                      const std::string& site);
  // The ungated MLP of GPT-2 and OPT under "blocks.<i>." prefix `block`: hidden = act(up(in)) (sites
  // mlp.hook_pre, mlp.hook_post), then add_projection(down) as hook_mlp_out.
  void ungated_mlp(const Pass& pass, const std::string& block, const ops::Linear& up, const ops::Linear& down,
                   const void* in, void* hidden, void* out, void* residual);
  // Causal attention of layer `layer` under "blocks.<i>." prefix `block`: the pass's keys and values (packed rows
  // kv_pitch elements apart, kv_heads * head_dim wide, keys already rotated) go into each sequence's cache, then
  // z [rows, heads * head_dim] is computed and delivered as attn.hook_z, after attn.hook_pattern when captured.
  void attend(const Pass& pass, int layer, const std::string& block, const ops::AttentionShape& shape,
              const void* q, const void* k, const void* v, int64_t kv_pitch, void* z);

  ModelConfig config_;
  std::unique_ptr<ops::Backend> backend_;

 private:
  // Model's own scratch slots; PATTERN_SLOT + i holds the pass's sequence i's attention pattern.
  enum : int { LOGITS_SLOT = MODEL_SLOTS, LAST_ROWS_SLOT, LAST_LOGITS_SLOT, EDIT_SLOT, PATTERN_SLOT };
  void reserve(KVCache& cache, int64_t positions) const;
  // Writes the pass's packed rows [rows, row_width] into each sequence's cache buffer at its positions.
  void store_rows(const Pass& pass, std::vector<ops::Buffer> KVCache::*buffers, int layer, const void* rows,
                  int64_t src_pitch, int64_t row_width);
  // The `logits` site when captured, and the last rows' logits when wanted.
  Tensor lm_head_logits(const Pass& pass, const void* hidden, bool want_last_rows);

  std::string dir_;
  std::string config_sha256_;  // of the synthetic config text; computed from the file otherwise
  std::shared_ptr<Checkpoint> checkpoint_;
  mutable std::string weights_sha256_;
  std::vector<ops::Buffer> scratch_;
  std::shared_ptr<ActivationEditor> editor_;
};

}  // namespace actcap
