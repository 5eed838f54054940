// Converts a Hugging Face checkpoint of the llama or qwen3 family to a GGUF file that llama.cpp loads, without
// quantisation: F32, or BF16 for the matrices (1-D weights stay F32, as llama.cpp's converter keeps them). Tensor
// names, metadata keys and the llama q/k row order follow llama.cpp's convert_hf_to_gguf.py; llama3 rope scaling
// becomes its rope_freqs tensor. The vocabulary is the folder's tokenizer.json (byte-level BPE), padded with
// [PAD<id>] tokens to vocab_size; without one, a byte-level vocabulary of vocab_size tokens (the 256 byte symbols,
// then [PAD<id>]) so that llama.cpp can load models fed token ids. Data is streamed, a row at a time.
//
//   to_gguf MODEL_DIR OUT.gguf f32|bf16
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/atomic_file.h"
#include "core/dtype.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;
using nlohmann::json;
using actcap::fail;
namespace gguf = actcap::gguf;

namespace {

// One GGUF tensor: its checkpoint tensor (or, for rope_freqs, its values), and the q/k head count whose rows
// llama.cpp's llama wants interleaved (0: rows as stored).
struct OutTensor {
  gguf::TensorInfo info;
  actcap::TensorView source;
  std::vector<float> values;
  int64_t permute_heads = 0;
};

gguf::Value u32(int64_t v) { return gguf::Value::unsigned_int(gguf::ValueType::UINT32, uint64_t(v)); }
gguf::Value f32(double v) { return gguf::Value::floating(gguf::ValueType::FLOAT32, v); }

const json& need(const json& config, const char* key, const std::string& path) {
  if (!config.contains(key) || config[key].is_null()) fail("{}: no \"{}\"", path, key);
  return config[key];
}

// GPT-2's byte-to-symbol map: printable bytes stand for themselves, the others for code points 256 and up.
std::vector<std::string> byte_symbols() {
  std::vector<int> code(256, -1);
  for (int b = 0; b < 256; ++b)
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) code[b] = b;
  for (int b = 0, extra = 0; b < 256; ++b)
    if (code[b] < 0) code[b] = 256 + extra++;
  std::vector<std::string> symbols;
  for (int c : code) {
    std::string utf8;
    if (c < 0x80) utf8 += char(c);
    else {
      utf8 += char(0xC0 | (c >> 6));
      utf8 += char(0x80 | (c & 0x3F));
    }
    symbols.push_back(utf8);
  }
  return symbols;
}

// tokenizer.ggml.* keys: the folder's tokenizer.json, or a byte-level vocabulary.
void add_vocabulary(const std::string& dir, const json& config, int64_t vocab,
                    std::vector<std::pair<std::string, gguf::Value>>& meta) {
  constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;
  std::vector<std::string> tokens(vocab);
  std::vector<int32_t> types(vocab, kUnused);
  std::vector<gguf::Value> merges;
  std::string pre = "default";
  const fs::path tokenizer_path = fs::path(dir) / "tokenizer.json";
  if (fs::exists(tokenizer_path)) {
    const std::string path = tokenizer_path.string();
    json tokenizer;
    try {
      tokenizer = json::parse(actcap::read_file(path));
    } catch (const json::exception& e) {
      fail("{}: malformed JSON ({})", path, e.what());
    }
    if (tokenizer["model"].value("type", "") != "BPE") fail("{}: not a BPE tokenizer", path);
    auto place = [&](int64_t id, const std::string& token, int32_t type) {
      if (id < 0 || id >= vocab) fail("{}: token id {} is past vocab_size {}", path, id, vocab);
      tokens[id] = token;
      types[id] = type;
    };
    for (const auto& [token, id] : tokenizer["model"]["vocab"].items()) place(id.get<int64_t>(), token, kNormal);
    for (const json& added : tokenizer.value("added_tokens", json::array()))
      place(added["id"].get<int64_t>(), added["content"].get<std::string>(),
            added.value("special", false) ? kControl : kUserDefined);
    for (const json& merge : tokenizer["model"]["merges"])  // "a b" or, in newer files, ["a", "b"]
      merges.push_back(gguf::Value::string(merge.is_string() ? merge.get<std::string>()
                                                              : merge[0].get<std::string>() + " " + merge[1].get<std::string>()));
    // llama.cpp's pre-tokenizer names for these families' split regexes.
    pre = config["model_type"] == "qwen3" ? "qwen2" : "llama-bpe";
  } else {
    const std::vector<std::string> symbols = byte_symbols();
    for (int64_t id = 0; id < std::min<int64_t>(vocab, 256); ++id) {
      tokens[id] = symbols[id];
      types[id] = kNormal;
    }
  }
  std::vector<gguf::Value> token_values, type_values;
  for (int64_t id = 0; id < vocab; ++id) {
    if (types[id] == kUnused) tokens[id] = "[PAD" + std::to_string(id) + "]";
    token_values.push_back(gguf::Value::string(tokens[id]));
    type_values.push_back(gguf::Value::signed_int(gguf::ValueType::INT32, types[id]));
  }
  meta.emplace_back("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  meta.emplace_back("tokenizer.ggml.pre", gguf::Value::string(pre));
  meta.emplace_back("tokenizer.ggml.tokens", gguf::Value::array(gguf::ValueType::STRING, std::move(token_values)));
  meta.emplace_back("tokenizer.ggml.token_type", gguf::Value::array(gguf::ValueType::INT32, std::move(type_values)));
  meta.emplace_back("tokenizer.ggml.merges", gguf::Value::array(gguf::ValueType::STRING, std::move(merges)));
  for (const char* id : {"bos_token_id", "eos_token_id"})
    if (config.contains(id) && config[id].is_number_integer())
      meta.emplace_back(std::string("tokenizer.ggml.") + id, u32(config[id].get<int64_t>()));
}

// Llama 3's per-frequency rope factors (the rope_freqs tensor llama.cpp multiplies its frequencies' periods by).
std::vector<float> llama3_rope_factors(const json& scaling, double theta, int64_t head_dim) {
  const double factor = scaling.value("factor", 8.0), low = scaling.value("low_freq_factor", 1.0);
  const double high = scaling.value("high_freq_factor", 4.0);
  const double original = scaling.value("original_max_position_embeddings", 8192.0);
  const double low_wavelen = original / low, high_wavelen = original / high;
  std::vector<float> factors;
  for (int64_t i = 0; i < head_dim; i += 2) {
    const double wavelen = 2 * std::numbers::pi * std::pow(theta, double(i) / double(head_dim));
    if (wavelen < high_wavelen) factors.push_back(1.0f);
    else if (wavelen > low_wavelen) factors.push_back(float(factor));
    else {
      const double smooth = (original / wavelen - low) / (high - low);
      factors.push_back(float(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return factors;
}

// Writes one tensor's data in `type`, row by row (llama's q/k rows interleaved as llama.cpp's rope wants).
void write_data(std::FILE* out, const OutTensor& t, const std::string& path) {
  std::vector<float> row_values;
  std::vector<uint8_t> bytes;
  const int64_t cols = int64_t(t.info.ne[0]);
  const int64_t rows = t.info.ne.size() > 1 ? int64_t(t.info.ne[1]) : 1;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t source_row = r;
    if (t.permute_heads > 0) {  // output row (head, j, half) is HF's row (head, half, j)
      const int64_t per_head = rows / t.permute_heads, head = r / per_head, within = r % per_head;
      source_row = head * per_head + (within % 2) * (per_head / 2) + within / 2;
    }
    row_values.resize(cols);
    if (t.source.data) {
      const actcap::DType dtype = t.source.dtype;
      const uint8_t* row = static_cast<const uint8_t*>(t.source.data) + source_row * cols * actcap::dtype_size(dtype);
      for (int64_t c = 0; c < cols; ++c) {
        if (dtype == actcap::DType::F32) {
          std::memcpy(&row_values[c], row + 4 * c, 4);
          continue;
        }
        uint16_t h;
        std::memcpy(&h, row + 2 * c, 2);
        row_values[c] = dtype == actcap::DType::BF16 ? actcap::bf16_to_f32(h) : actcap::f16_to_f32(h);
      }
    } else {
      row_values = t.values;
    }
    if (t.info.ggml_type == gguf::kGgmlBF16) {
      bytes.resize(cols * 2);
      for (int64_t c = 0; c < cols; ++c) {
        const uint16_t h = actcap::f32_to_bf16(row_values[c]);
        std::memcpy(&bytes[2 * c], &h, 2);
      }
    } else {
      bytes.resize(cols * 4);
      std::memcpy(bytes.data(), row_values.data(), cols * 4);
    }
    if (std::fwrite(bytes.data(), 1, bytes.size(), out) != bytes.size()) fail("{}: write failed (disk full?)", path);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc != 4 || (std::string(argv[3]) != "f32" && std::string(argv[3]) != "bf16")) {
      std::fprintf(stderr, "usage: %s MODEL_DIR OUT.gguf f32|bf16\n", argv[0]);
      return 2;
    }
    const std::string dir = argv[1], out_path = argv[2];
    const bool bf16 = std::string(argv[3]) == "bf16";
    const std::string config_path = (fs::path(dir) / "config.json").string();
    json config;
    try {
      config = json::parse(actcap::read_file(config_path));
    } catch (const json::exception& e) {
      fail("{}: malformed JSON ({})", config_path, e.what());
    }
    const std::string arch = need(config, "model_type", config_path).get<std::string>();
    if (arch != "llama" && arch != "qwen3") fail("{}: model_type \"{}\" (llama or qwen3 only)", config_path, arch);
    const int64_t hidden = need(config, "hidden_size", config_path), heads = need(config, "num_attention_heads", config_path);
    const int64_t kv_heads = need(config, "num_key_value_heads", config_path);
    const int64_t layers = need(config, "num_hidden_layers", config_path), vocab = need(config, "vocab_size", config_path);
    const int64_t head_dim = config.contains("head_dim") && !config["head_dim"].is_null()
                                 ? config["head_dim"].get<int64_t>() : hidden / heads;
    // transformers 5 moved rope_theta and the scaling into rope_parameters.
    const json rope = config.contains("rope_parameters") ? config["rope_parameters"] : config.value("rope_scaling", json());
    const double theta = config.contains("rope_theta") ? config["rope_theta"].get<double>()
                                                       : rope.is_object() ? rope.value("rope_theta", 10000.0) : 10000.0;

    std::vector<std::pair<std::string, gguf::Value>> meta;
    auto key = [&](const std::string& name, gguf::Value value) { meta.emplace_back(arch + "." + name, std::move(value)); };
    meta.emplace_back("general.architecture", gguf::Value::string(arch));
    meta.emplace_back("general.name", gguf::Value::string(fs::path(dir).filename().string()));
    meta.emplace_back("general.file_type", u32(bf16 ? 32 : 0));  // llama_ftype ALL_F32 / MOSTLY_BF16
    key("context_length", u32(config.value("max_position_embeddings", int64_t(4096))));
    key("embedding_length", u32(hidden));
    key("block_count", u32(layers));
    key("feed_forward_length", u32(need(config, "intermediate_size", config_path).get<int64_t>()));
    key("attention.head_count", u32(heads));
    key("attention.head_count_kv", u32(kv_heads));
    key("attention.key_length", u32(head_dim));
    key("attention.value_length", u32(head_dim));
    key("attention.layer_norm_rms_epsilon", f32(config.value("rms_norm_eps", 1e-6)));
    key("rope.freq_base", f32(theta));
    key("rope.dimension_count", u32(head_dim));
    key("vocab_size", u32(vocab));
    add_vocabulary(dir, config, vocab, meta);

    // The checkpoint's tensors by name, memory-mapped.
    actcap::Checkpoint checkpoint(dir);
    std::vector<std::unique_ptr<actcap::SafetensorsFile>> files;
    std::map<std::string, actcap::TensorView> weights;
    for (const std::string& file : checkpoint.files()) {
      files.push_back(std::make_unique<actcap::SafetensorsFile>(file));
      for (const std::string& name : files.back()->names()) weights[name] = files.back()->view(name);
    }
    std::vector<OutTensor> tensors;
    auto take = [&](const std::string& hf, const std::string& name, int64_t permute_heads = 0) {
      const auto it = weights.find(hf);
      if (it == weights.end()) fail("{}: no tensor {}", checkpoint.describe(), hf);
      OutTensor t;
      t.source = it->second;
      t.permute_heads = permute_heads;
      t.info.name = name;
      for (auto d = t.source.shape.rbegin(); d != t.source.shape.rend(); ++d) t.info.ne.push_back(uint64_t(*d));
      const bool matrix = t.info.ne.size() > 1;
      t.info.ggml_type = bf16 && matrix ? gguf::kGgmlBF16 : gguf::kGgmlF32;
      t.info.bytes = uint64_t(t.source.numel()) * (t.info.ggml_type == gguf::kGgmlBF16 ? 2 : 4);
      tensors.push_back(std::move(t));
    };
    take("model.embed_tokens.weight", "token_embd.weight");
    take("model.norm.weight", "output_norm.weight");
    if (weights.count("lm_head.weight") && !config.value("tie_word_embeddings", false))
      take("lm_head.weight", "output.weight");
    const std::string rope_type = rope.is_object() ? rope.value("rope_type", rope.value("type", "default")) : "default";
    if (rope_type != "default" && rope_type != "llama3")
      fail("{}: rope type \"{}\" is not converted (default and llama3 only)", config_path, rope_type);
    if (rope_type == "llama3") {
      OutTensor t;
      t.values = llama3_rope_factors(rope, theta, head_dim);
      t.info = {"rope_freqs.weight", {uint64_t(t.values.size())}, gguf::kGgmlF32, t.values.size() * 4};
      tensors.push_back(std::move(t));
    }
    // llama.cpp's llama rotates interleaved pairs, HF's rotates halves: its converter reorders q and k rows.
    const bool interleave = arch == "llama";
    for (int64_t i = 0; i < layers; ++i) {
      const std::string hf = "model.layers." + std::to_string(i) + ".", blk = "blk." + std::to_string(i) + ".";
      take(hf + "input_layernorm.weight", blk + "attn_norm.weight");
      take(hf + "self_attn.q_proj.weight", blk + "attn_q.weight", interleave ? heads : 0);
      take(hf + "self_attn.k_proj.weight", blk + "attn_k.weight", interleave ? kv_heads : 0);
      take(hf + "self_attn.v_proj.weight", blk + "attn_v.weight");
      take(hf + "self_attn.o_proj.weight", blk + "attn_output.weight");
      if (arch == "qwen3") {
        take(hf + "self_attn.q_norm.weight", blk + "attn_q_norm.weight");
        take(hf + "self_attn.k_norm.weight", blk + "attn_k_norm.weight");
      }
      take(hf + "post_attention_layernorm.weight", blk + "ffn_norm.weight");
      take(hf + "mlp.gate_proj.weight", blk + "ffn_gate.weight");
      take(hf + "mlp.up_proj.weight", blk + "ffn_up.weight");
      take(hf + "mlp.down_proj.weight", blk + "ffn_down.weight");
    }

    std::vector<gguf::TensorInfo> infos;
    for (const OutTensor& t : tensors) infos.push_back(t.info);
    const std::string header = gguf::encode_header(out_path, meta, infos);
    const std::string temporary = out_path + ".tmp-" + std::to_string(getpid());
    std::FILE* out = std::fopen(temporary.c_str(), "wb");
    if (!out) fail("{}: cannot create ({})", temporary, std::strerror(errno));
    const std::vector<char> zeros(64, 0);
    bool ok = std::fwrite(header.data(), 1, header.size(), out) == header.size();
    try {
      for (const OutTensor& t : tensors) {
        write_data(out, t, temporary);
        const uint64_t padding = gguf::padded(t.info.bytes, 32) - t.info.bytes;  // general.alignment: the default 32
        ok = ok && std::fwrite(zeros.data(), 1, padding, out) == padding;
      }
    } catch (...) {
      std::fclose(out);
      fs::remove(temporary);
      throw;
    }
    ok = std::fclose(out) == 0 && ok;
    if (!ok) {
      fs::remove(temporary);
      fail("{}: write failed (disk full?)", out_path);
    }
    fs::rename(temporary, out_path);
    std::printf("%s: %zu tensors, %s\n", out_path.c_str(), tensors.size(), bf16 ? "BF16 matrices" : "F32");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "to_gguf: %s\n", e.what());
    return 1;
  }
}
