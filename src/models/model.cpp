#include "models/model.h"

#include <filesystem>
#include <map>

#include "capture/sink.h"
#include "capture/sites.h"
#include "core/error.h"
#include "core/sha256.h"
#include "models/activation_editor.h"
#include "models/registry.h"

namespace actcap {

bool CaptureTarget::wants(std::string_view site) const {
  return sink && (!selection || selection->wants(site));
}

std::unique_ptr<Model> Model::load(const std::string& dir, const LoadOptions& options) {
  ModelConfig config = ModelConfig::load(dir);
  if (options.rope_frequencies_in_checkpoint_dtype) config.rope.frequencies_dtype = config.dtype;
  const Architecture* architecture = find_architecture(config.model_type);  // known: ModelConfig::load checked
  return architecture->make(ModelSource{dir, std::make_shared<Checkpoint>(dir), ""}, std::move(config), options);
}

std::unique_ptr<Model> Model::synthetic(const std::string& config_json, uint64_t seed, const LoadOptions& options) {
  ModelConfig config = ModelConfig::parse(config_json, "", "<synthetic config>");
  return find_architecture(config.model_type)
      ->make(ModelSource{"<synthetic>", Checkpoint::synthetic(seed), config_json}, std::move(config), options);
}

std::vector<std::string> Model::supported_model_types() { return architecture_names(); }

Model::Model(const ModelSource& source, ModelConfig config, const LoadOptions& options)
    : config_(std::move(config)),
      backend_(ops::make_backend(options.backend)),
      dir_(source.dir),
      checkpoint_(source.checkpoint) {
  if (!source.config_text.empty()) config_sha256_ = sha256_hex(source.config_text.data(), source.config_text.size());
}

Model::~Model() = default;

std::string Model::config_sha256() const {
  if (!config_sha256_.empty()) return config_sha256_;
  return sha256_file((std::filesystem::path(dir_) / "config.json").string());
}

std::string Model::weights_sha256() const {
  if (weights_sha256_.empty()) {
    if (checkpoint_->files().empty()) {
      weights_sha256_ = "synthetic";
    } else if (checkpoint_->files().size() == 1) {
      weights_sha256_ = sha256_file(checkpoint_->files()[0]);
    } else {
      // Several shards: the hash of "name sha256\n" lines, in index order.
      std::string lines;
      for (const auto& path : checkpoint_->files())
        lines += std::filesystem::path(path).filename().string() + " " + sha256_file(path) + "\n";
      weights_sha256_ = sha256_hex(lines.data(), lines.size());
    }
  }
  return weights_sha256_;
}

std::vector<std::string> Model::layered_site_names(const std::vector<std::string>& embedding_sites,
                                                  const std::vector<std::string>& block_sites, bool final_norm) const {
  std::vector<std::string> sites = embedding_sites;
  sites.push_back("hidden_states.0");
  const int64_t layers = config_.num_hidden_layers;
  for (int64_t i = 0; i < layers; ++i) {
    for (const std::string& site : block_sites) sites.push_back("blocks." + std::to_string(i) + "." + site);
    if (i + 1 < layers) sites.push_back("hidden_states." + std::to_string(i + 1));
  }
  if (final_norm) sites.push_back("ln_final.hook_normalized");
  sites.push_back("hidden_states." + std::to_string(layers));
  sites.push_back("logits");
  return sites;
}

void Model::check_layer_count(const std::string& layer_prefix, const std::string& first_weight,
                              const char* key) const {
  const int64_t layers = config_.num_hidden_layers;
  const std::string last = layer_prefix + std::to_string(layers - 1) + "." + first_weight;
  if (!checkpoint_->contains(last))
    fail("{}: \"{}\" is {}, but {} has no tensor '{}'", (std::filesystem::path(dir_) / "config.json").string(), key,
         layers, checkpoint_->describe(), last);
}

const void* Model::weight(const std::string& name, const Shape& shape) {
  return backend_->weight(checkpoint_->view(name, shape));
}

void* Model::scratch(int slot, int64_t elements) {
  if (scratch_.size() <= size_t(slot)) scratch_.resize(size_t(slot) + 1);
  ops::Buffer& buffer = scratch_[size_t(slot)];
  const size_t bytes = size_t(elements) * dtype_size(backend_->dtype());
  if (buffer.bytes() < bytes) buffer = backend_->allocate(std::max<int64_t>(elements, 1));
  return buffer.data();
}

void* Model::at(const void* p, int64_t elements) const {
  return static_cast<char*>(const_cast<void*>(p)) + elements * int64_t(dtype_size(backend_->dtype()));
}

KVCache Model::new_cache(int64_t capacity) const {
  KVCache cache;
  cache.keys.resize(size_t(config_.num_hidden_layers));
  cache.values.resize(size_t(config_.num_hidden_layers));
  reserve(cache, capacity);
  return cache;
}

void Model::reserve(KVCache& cache, int64_t positions) const {
  if (positions <= cache.capacity) return;
  const int64_t capacity = std::max(positions, cache.capacity * 2);
  const int64_t row = config_.num_key_value_heads * config_.head_dim;
  for (auto* buffers : {&cache.keys, &cache.values}) {
    for (auto& buffer : *buffers) {
      ops::Buffer grown = backend_->allocate(capacity * row);
      if (cache.length > 0) backend_->copy_rows(grown.data(), row, buffer.data(), row, row, cache.length);
      buffer = std::move(grown);
    }
  }
  cache.capacity = capacity;
}

Tensor Model::forward(std::span<const int32_t> tokens, KVCache& cache, const CaptureTarget& capture, int sequence) {
  const SequenceStep step{tokens, &cache, sequence};
  Tensor logits = forward(std::span(&step, 1), capture);
  logits.reshape({config_.vocab_size});
  return logits;
}

Tensor Model::forward(std::span<const SequenceStep> steps, const CaptureTarget& capture, bool want_logits) {
  if (steps.empty()) fail("internal error: a forward pass needs at least one sequence");
  Pass pass;
  pass.capture = capture;
  pass.editor = editor_.get();
  for (const SequenceStep& step : steps) {
    if (step.tokens.empty()) fail("internal error: a forward step needs at least one token");
    for (int32_t id : step.tokens)
      if (id < 0 || id >= config_.vocab_size)
        fail("token id {} is outside the vocabulary of {} (size {})", id, dir_, config_.vocab_size);
    KVCache& cache = *step.cache;
    const int64_t total = cache.length + int64_t(step.tokens.size());
    if (max_positions() > 0 && total > max_positions())
      fail("sequence of {} tokens is longer than {} allows ({} positions)", total, dir_, max_positions());
    if (cache.keys.size() != size_t(config_.num_hidden_layers)) cache = new_cache(total);
    reserve(cache, total);
    pass.batch.sequences.push_back(
        ops::BatchSequence{pass.batch.rows(), int64_t(step.tokens.size()), cache.length});
    pass.batch.token_ids.insert(pass.batch.token_ids.end(), step.tokens.begin(), step.tokens.end());
    pass.caches.push_back(&cache);
    pass.sequences.push_back(step.sequence);
  }
  backend_->begin_batch(pass.batch);
  const void* hidden = run(pass);
  Tensor logits = lm_head_logits(pass, hidden, want_logits);
  for (size_t i = 0; i < pass.caches.size(); ++i) pass.caches[i]->length += pass.batch.sequences[i].rows;
  return logits;
}

void Model::emit(const Pass& pass, const std::string& site, void* rows, const Shape& row_shape) {
  const int64_t width = num_elements(row_shape);
  if (pass.editor && pass.editor->edits(site))
    pass.editor->edit(site, rows, width,
                      EditPass{*backend_, pass.batch.sequences, pass.sequences, pass.rows(),
                               scratch(EDIT_SLOT, pass.rows() * width)});
  if (!pass.wants(site)) return;
  backend_->capture(rows, pass.rows() * width,
                    [sink = pass.capture.sink, sequences = pass.sequences, spans = pass.batch.sequences, site,
                     row_shape, width](const float* host) {
                      for (size_t i = 0; i < spans.size(); ++i) {
                        Shape shape{spans[i].rows};
                        shape.insert(shape.end(), row_shape.begin(), row_shape.end());
                        sink->on_activation(sequences[i], site, spans[i].first_position,
                                            TensorView{host + spans[i].first_row * width, DType::F32, shape});
                      }
                    });
}

void Model::emit_sequence(const Pass& pass, size_t index, const std::string& site, const void* rows,
                          const Shape& row_shape) {
  if (!pass.wants(site)) return;
  const ops::BatchSequence span = pass.batch.sequences[index];
  Shape shape{span.rows};
  shape.insert(shape.end(), row_shape.begin(), row_shape.end());
  backend_->capture(rows, num_elements(shape),
                    [sink = pass.capture.sink, sequence = pass.sequences[index], site, span, shape](const float* host) {
                      sink->on_activation(sequence, site, span.first_position, TensorView{host, DType::F32, shape});
                    });
}

void Model::store_rows(const Pass& pass, std::vector<ops::Buffer> KVCache::*buffers, int layer, const void* rows,
                       int64_t src_pitch, int64_t row_width) {
  for (size_t i = 0; i < pass.caches.size(); ++i) {
    const ops::BatchSequence& s = pass.batch.sequences[i];
    void* cache = ((*pass.caches[i]).*buffers)[size_t(layer)].data();
    backend_->copy_rows(at(cache, s.first_position * row_width), row_width, at(rows, s.first_row * src_pitch),
                        src_pitch, row_width, s.rows);
  }
}

void Model::add_projection(const Pass& pass, const ops::Linear& layer, const void* in, void* out, void* residual,
                           const std::string& site) {
  backend_->linear(layer, in, pass.rows(), out);
  emit(pass, site, out, {layer.out});
  backend_->add(residual, out, residual, pass.rows() * layer.out);
}

void Model::ungated_mlp(const Pass& pass, const std::string& block, const ops::Linear& up, const ops::Linear& down,
                        const void* in, void* hidden, void* out, void* residual) {
  backend_->linear(up, in, pass.rows(), hidden);
  emit(pass, block + "mlp.hook_pre", hidden, {up.out});
  backend_->activate(config_.activation, hidden, pass.rows() * up.out);
  emit(pass, block + "mlp.hook_post", hidden, {up.out});
  add_projection(pass, down, hidden, out, residual, block + "hook_mlp_out");
}

void Model::attend(const Pass& pass, int layer, const std::string& block, const ops::AttentionShape& shape,
                   const void* q, const void* k, const void* v, int64_t kv_pitch, void* z) {
  const int64_t kv_width = shape.kv_heads * shape.head_dim;
  store_rows(pass, &KVCache::keys, layer, k, kv_pitch, kv_width);
  store_rows(pass, &KVCache::values, layer, v, kv_pitch, kv_width);
  const std::string pattern_site = block + "attn.hook_pattern";
  const bool want_pattern = pass.wants(pattern_site);
  std::vector<ops::AttentionSequence> sequences;
  for (size_t i = 0; i < pass.caches.size(); ++i) {
    const ops::BatchSequence& s = pass.batch.sequences[i];
    const KVCache& cache = *pass.caches[i];
    void* pattern = want_pattern ? scratch(PATTERN_SLOT + int(i), s.rows * shape.heads * (s.first_position + s.rows))
                                 : nullptr;
    sequences.push_back({cache.keys[size_t(layer)].data(), cache.values[size_t(layer)].data(), pattern});
  }
  backend_->attention(shape, q, sequences, z);
  for (size_t i = 0; want_pattern && i < sequences.size(); ++i) {
    const ops::BatchSequence& s = pass.batch.sequences[i];
    emit_sequence(pass, i, pattern_site, sequences[i].pattern, {shape.heads, s.first_position + s.rows});
  }
  emit(pass, block + "attn.hook_z", z, {shape.heads * shape.head_dim});
}

Tensor Model::lm_head_logits(const Pass& pass, const void* hidden, bool want_last_rows) {
  const ops::Linear& head = lm_head();
  if (pass.wants("logits")) {
    void* all = scratch(LOGITS_SLOT, pass.rows() * head.out);
    backend_->linear(head, hidden, pass.rows(), all);
    if (final_logit_softcap() > 0) backend_->softcap(all, final_logit_softcap(), pass.rows() * head.out);
    emit(pass, "logits", all, {head.out});
  }
  if (!want_last_rows) return Tensor();
  // The returned rows are computed on their own, so the chosen tokens never depend on what is captured.
  const int64_t n = int64_t(pass.batch.sequences.size());
  void* last = scratch(LAST_ROWS_SLOT, n * head.in);
  for (int64_t i = 0; i < n; ++i) {
    const ops::BatchSequence& s = pass.batch.sequences[size_t(i)];
    backend_->copy_rows(at(last, i * head.in), head.in, at(hidden, (s.first_row + s.rows - 1) * head.in), head.in,
                        head.in, 1);
  }
  void* logits = scratch(LAST_LOGITS_SLOT, n * head.out);
  backend_->linear(head, last, n, logits);
  if (final_logit_softcap() > 0) backend_->softcap(logits, final_logit_softcap(), n * head.out);
  std::vector<float> host = backend_->to_host(logits, n * head.out);
  Tensor result({n, head.out});
  std::copy(host.begin(), host.end(), result.f32());
  return result;
}

}  // namespace actcap
