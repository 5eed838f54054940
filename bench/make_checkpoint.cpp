// A random bf16 checkpoint of a real model's shape, as a Hugging Face folder: config.json (the shape's, with
// torch_dtype bfloat16), generation_config.json, the weights in safetensors shards (with
// model.safetensors.index.json when there are several) and, with --tokenizer DIR, that folder's tokenizer.json
// and tokenizer_config.json (refused when the tokenizer has ids past the shape's vocabulary).
// Weights are streamed to disk in one pass (memory holds one 16 MiB buffer), and are a function of the seed and
// the tensor's name only: the same command writes the same bytes. Linear weights and embeddings are uniform with
// standard deviation --std (default 0.02, HF's initializer_range), norm weights 1 +- 0.25, biases +- 0.02.
//
//   make_checkpoint SHAPE.json OUT_DIR [--seed N] [--layers N] [--tokenizer DIR] [--shard-mib N] [--std X]
//   SHAPE.json: a config.json of the llama, mistral, qwen2 or qwen3 family (bench/shapes/*.json)
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "io/safetensors_producer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct WeightSpec {
  std::string name;
  actcap::Shape shape;
  float low, high;  // uniform in [low, high]
};

int64_t key(const json& config, const std::string& path, const char* name) {
  if (!config.contains(name) || !config[name].is_number_integer())
    actcap::fail("{}: no integer \"{}\"", path, name);
  return config[name].get<int64_t>();
}

std::vector<WeightSpec> weight_specs(const json& config, const std::string& path, float std_dev) {
  const std::string type = config.value("model_type", "");
  if (type != "llama" && type != "mistral" && type != "qwen2" && type != "qwen3")
    actcap::fail("{}: model_type \"{}\" is not of the llama family (llama, mistral, qwen2, qwen3)", path, type);
  const int64_t hidden = key(config, path, "hidden_size"), layers = key(config, path, "num_hidden_layers");
  const int64_t heads = key(config, path, "num_attention_heads"), kv_heads = key(config, path, "num_key_value_heads");
  const int64_t inter = key(config, path, "intermediate_size"), vocab = key(config, path, "vocab_size");
  const int64_t head_dim = config.contains("head_dim") && !config["head_dim"].is_null()
                               ? key(config, path, "head_dim") : hidden / heads;
  const float w = std_dev * std::sqrt(3.0f);  // uniform [-w, w] has standard deviation std_dev
  std::vector<WeightSpec> specs{{"model.embed_tokens.weight", {vocab, hidden}, -w, w}};
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    specs.push_back({p + "input_layernorm.weight", {hidden}, 0.75f, 1.25f});
    specs.push_back({p + "self_attn.q_proj.weight", {heads * head_dim, hidden}, -w, w});
    specs.push_back({p + "self_attn.k_proj.weight", {kv_heads * head_dim, hidden}, -w, w});
    specs.push_back({p + "self_attn.v_proj.weight", {kv_heads * head_dim, hidden}, -w, w});
    if (type == "qwen2") {
      specs.push_back({p + "self_attn.q_proj.bias", {heads * head_dim}, -0.02f, 0.02f});
      specs.push_back({p + "self_attn.k_proj.bias", {kv_heads * head_dim}, -0.02f, 0.02f});
      specs.push_back({p + "self_attn.v_proj.bias", {kv_heads * head_dim}, -0.02f, 0.02f});
    }
    if (type == "qwen3") {
      specs.push_back({p + "self_attn.q_norm.weight", {head_dim}, 0.75f, 1.25f});
      specs.push_back({p + "self_attn.k_norm.weight", {head_dim}, 0.75f, 1.25f});
    }
    specs.push_back({p + "self_attn.o_proj.weight", {hidden, heads * head_dim}, -w, w});
    specs.push_back({p + "post_attention_layernorm.weight", {hidden}, 0.75f, 1.25f});
    specs.push_back({p + "mlp.gate_proj.weight", {inter, hidden}, -w, w});
    specs.push_back({p + "mlp.up_proj.weight", {inter, hidden}, -w, w});
    specs.push_back({p + "mlp.down_proj.weight", {hidden, inter}, -w, w});
  }
  specs.push_back({"model.norm.weight", {hidden}, 0.75f, 1.25f});
  if (!config.value("tie_word_embeddings", false)) specs.push_back({"lm_head.weight", {vocab, hidden}, -w, w});
  return specs;
}

uint64_t elements(const WeightSpec& spec) {
  uint64_t n = 1;
  for (int64_t d : spec.shape) n *= uint64_t(d);
  return n;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Hands one tensor's bf16 values to `put`, 16 MiB at a time.
void produce_tensor(const WeightSpec& spec, uint64_t seed, const std::function<void(const void*, size_t)>& put) {
  constexpr size_t kChunk = size_t(8) << 20;
  std::vector<uint16_t> buffer;
  buffer.reserve(kChunk);
  uint64_t state = seed ^ fnv1a(spec.name);
  const float scale = (spec.high - spec.low) / 65536.0f;
  for (uint64_t left = elements(spec); left > 0;) {
    buffer.clear();
    const size_t n = size_t(std::min<uint64_t>(left, kChunk));
    while (buffer.size() < n) {
      uint64_t bits = splitmix64(state);
      for (int j = 0; j < 4 && buffer.size() < n; ++j, bits >>= 16)
        buffer.push_back(actcap::f32_to_bf16(spec.low + (float(bits & 0xffff) + 0.5f) * scale));
    }
    put(buffer.data(), n * sizeof(uint16_t));
    left -= n;
  }
}

// The largest token id of a tokenizer.json (its model's vocabulary and its added tokens).
int64_t largest_token_id(const std::string& path) {
  json tokenizer;
  try {
    tokenizer = json::parse(actcap::read_file(path));
  } catch (const json::exception& e) {
    actcap::fail("{}: malformed JSON ({})", path, e.what());
  }
  int64_t largest = -1;
  if (tokenizer.contains("model") && tokenizer["model"].contains("vocab") && tokenizer["model"]["vocab"].is_object())
    for (const auto& [token, id] : tokenizer["model"]["vocab"].items()) largest = std::max(largest, id.get<int64_t>());
  for (const json& added : tokenizer.value("added_tokens", json::array())) largest = std::max(largest, added.value("id", int64_t(-1)));
  if (largest < 0) actcap::fail("{}: no token ids", path);
  return largest;
}

std::string shard_name(size_t index, size_t count) {
  if (count == 1) return "model.safetensors";
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 3) {
      std::fprintf(stderr, "usage: %s SHAPE.json OUT_DIR [--seed N] [--layers N] [--tokenizer DIR] [--shard-mib N] [--std X]\n",
                   argv[0]);
      return 2;
    }
    const std::string shape_path = argv[1], out = argv[2];
    uint64_t seed = 0, shard_bytes = uint64_t(4) << 30;
    int64_t layers = -1;
    float std_dev = 0.02f;
    std::string tokenizer_dir;
    for (int i = 3; i < argc; ++i) {
      const std::string flag = argv[i];
      if (i + 1 >= argc) actcap::fail("{} needs a value", flag);
      const std::string value = argv[++i];
      if (flag == "--seed") seed = std::stoull(value);
      else if (flag == "--layers") layers = std::stoll(value);
      else if (flag == "--tokenizer") tokenizer_dir = value;
      else if (flag == "--shard-mib") shard_bytes = std::stoull(value) << 20;
      else if (flag == "--std") std_dev = std::stof(value);
      else actcap::fail("unknown option {}", flag);
    }
    json config;
    try {
      config = json::parse(actcap::read_file(shape_path));
    } catch (const json::exception& e) {
      actcap::fail("{}: malformed JSON ({})", shape_path, e.what());
    }
    if (layers >= 0) config["num_hidden_layers"] = layers;
    config["torch_dtype"] = "bfloat16";
    const std::vector<WeightSpec> specs = weight_specs(config, shape_path, std_dev);

    const std::string tokenizer = (fs::path(tokenizer_dir) / "tokenizer.json").string();
    if (!tokenizer_dir.empty()) {
      const int64_t vocab = config["vocab_size"].get<int64_t>();
      if (const int64_t largest = largest_token_id(tokenizer); largest >= vocab)
        actcap::fail("{}: token id {} is past the shape's vocab_size {}", tokenizer, largest, vocab);
    }
    fs::create_directories(out);
    if (!tokenizer_dir.empty()) {
      fs::copy_file(tokenizer, fs::path(out) / "tokenizer.json", fs::copy_options::overwrite_existing);
      const fs::path tokenizer_config = fs::path(tokenizer_dir) / "tokenizer_config.json";
      if (fs::exists(tokenizer_config))
        fs::copy_file(tokenizer_config, fs::path(out) / "tokenizer_config.json", fs::copy_options::overwrite_existing);
    }
    actcap::write_file_atomic((fs::path(out) / "config.json").string(), config.dump(2) + "\n");
    json generation{{"do_sample", false}};
    for (const char* id : {"bos_token_id", "eos_token_id"})
      if (config.contains(id)) generation[id] = config[id];
    actcap::write_file_atomic((fs::path(out) / "generation_config.json").string(), generation.dump(2) + "\n");

    // Tensors go to shards in order, a new shard once the current one holds shard_bytes.
    std::vector<size_t> shard_of(specs.size());
    uint64_t in_shard = 0, total = 0;
    size_t shards = 1;
    for (size_t i = 0; i < specs.size(); ++i) {
      const uint64_t bytes = elements(specs[i]) * 2;
      if (in_shard > 0 && in_shard + bytes > shard_bytes) {
        ++shards;
        in_shard = 0;
      }
      shard_of[i] = shards - 1;
      in_shard += bytes;
      total += bytes;
    }
    json weight_map = json::object();
    for (size_t shard = 0, i = 0; shard < shards; ++shard) {
      const std::string name = shard_name(shard, shards);
      std::vector<actcap::SafetensorsProducer> producers;
      for (; i < specs.size() && shard_of[i] == shard; ++i) {
        const WeightSpec& spec = specs[i];
        producers.push_back({spec.name, actcap::DType::BF16, spec.shape,
                             [&spec, seed](const auto& put) { produce_tensor(spec, seed, put); }});
        weight_map[spec.name] = name;
      }
      actcap::write_safetensors((fs::path(out) / name).string(), {{"format", "pt"}}, producers);
      std::fprintf(stderr, "make_checkpoint: wrote %s\n", (fs::path(out) / name).c_str());
    }
    if (shards > 1) {
      const json index{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
      actcap::write_file_atomic((fs::path(out) / "model.safetensors.index.json").string(), index.dump(2) + "\n");
    }
    std::printf("%s: %zu tensors, %.2f GB of bf16 weights in %zu file(s)\n", out.c_str(), specs.size(), total * 1e-9,
                shards);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_checkpoint: %s\n", e.what());
    return 1;
  }
}
