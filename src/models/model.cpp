#include "models/model.h"

#include <filesystem>
#include <map>

#include "capture/sink.h"
#include "capture/sites.h"
#include "core/error.h"
#include "core/sha256.h"
#include "models/architectures.h"

namespace actcap {

namespace {

using Factory = std::unique_ptr<Model> (*)(const ModelSource&, ModelConfig);

const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> factories = {
      {"gpt2", make_gpt2},   {"llama", make_llama}, {"mistral", make_mistral},
      {"opt", make_opt},     {"qwen2", make_qwen2}, {"qwen3", make_qwen3},
  };
  return factories;
}

}  // namespace

bool CaptureTarget::wants(std::string_view site) const {
  return sink && (!selection || selection->wants(site));
}

void CaptureTarget::emit(const std::string& site, int64_t first_position, const float* data, Shape rows_shape) const {
  if (!wants(site)) return;
  sink->on_activation(sequence, site, first_position, TensorView{data, DType::F32, std::move(rows_shape)});
}

std::unique_ptr<Model> Model::load(const std::string& dir, const LoadOptions& options) {
  ModelConfig config = ModelConfig::load(dir);
  if (options.rope_frequencies_in_checkpoint_dtype) config.rope.frequencies_dtype = config.dtype;
  auto it = registry().find(config.model_type);
  if (it == registry().end())
    fail("{}: model_type \"{}\" is not supported", (std::filesystem::path(dir) / "config.json").string(),
         config.model_type);
  return it->second(ModelSource{dir, std::make_shared<Checkpoint>(dir), ""}, std::move(config));
}

std::unique_ptr<Model> Model::synthetic(const std::string& config_json, uint64_t seed) {
  ModelConfig config = ModelConfig::parse(config_json, "", "<synthetic config>");
  auto it = registry().find(config.model_type);
  if (it == registry().end()) fail("<synthetic config>: model_type \"{}\" is not supported", config.model_type);
  return it->second(ModelSource{"<synthetic>", Checkpoint::synthetic(seed), config_json}, std::move(config));
}

std::vector<std::string> Model::supported_model_types() {
  std::vector<std::string> types;
  for (const auto& [name, factory] : registry()) types.push_back(name);
  return types;
}

Model::Model(const ModelSource& source, ModelConfig config)
    : config_(std::move(config)), dir_(source.dir), checkpoint_(source.checkpoint) {
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

TensorView Model::weight(const std::string& name, const Shape& shape) { return checkpoint_->f32(name, shape); }

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
  for (auto* tensors : {&cache.keys, &cache.values}) {
    for (auto& t : *tensors) {
      Tensor grown({capacity, config_.num_key_value_heads, config_.head_dim});
      if (cache.length > 0) std::copy(t.f32(), t.f32() + cache.length * row, grown.f32());
      t = std::move(grown);
    }
  }
  cache.capacity = capacity;
}

Tensor Model::forward(std::span<const int32_t> tokens, KVCache& cache, const CaptureTarget& capture) {
  if (tokens.empty()) fail("internal error: a forward step needs at least one token");
  for (int32_t id : tokens)
    if (id < 0 || id >= config_.vocab_size)
      fail("token id {} is outside the vocabulary of {} (size {})", id, dir_, config_.vocab_size);
  const int64_t total = cache.length + int64_t(tokens.size());
  if (max_positions() > 0 && total > max_positions())
    fail("sequence of {} tokens is longer than {} allows ({} positions)", total, dir_, max_positions());
  if (cache.keys.size() != size_t(config_.num_hidden_layers)) cache = new_cache(total);
  reserve(cache, total);
  Tensor logits = run(tokens, cache, capture);
  cache.length = total;
  return logits;
}

Tensor Model::lm_head_logits(const ops::Linear& head, const float* hidden, int64_t rows, int64_t first_position,
                             const CaptureTarget& capture) const {
  if (capture.wants("logits")) {
    Tensor all({rows, head.out});
    ops::linear(head, hidden, rows, all.f32());
    capture.emit("logits", first_position, all.f32(), {rows, head.out});
  }
  Tensor last({head.out});
  ops::linear(head, hidden + (rows - 1) * head.in, 1, last.f32());
  return last;
}

}  // namespace actcap
