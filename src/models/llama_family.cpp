#include "models/llama_family.h"

#include <algorithm>
#include <cmath>

#include "models/config_reader.h"
#include "models/rope_frequencies.h"

namespace actcap {

void parse_llama_family_config(const ConfigReader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.intermediate_size = c.get<int64_t>("intermediate_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = c.get<int64_t>("num_key_value_heads", m.num_attention_heads);
  if (m.num_attention_heads > 0) m.head_dim = c.get<int64_t>("head_dim", m.hidden_size / m.num_attention_heads);
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings", 0);
  m.norm_eps = c.get<double>("rms_norm_eps", 1e-6);
  m.activation = parse_activation(c.get<std::string>("hidden_act", "silu"), c.origin());
  m.rope = parse_rope(c);
  m.attention_bias = c.get<bool>("attention_bias", false);
  m.mlp_bias = c.get<bool>("mlp_bias", false);
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  check_rotary_decoder(m, c.origin(), "rms_norm_eps");
}

int64_t parse_sliding_window(const ConfigReader& c) {
  const int64_t window = c.get<int64_t>("sliding_window", 0);
  if (window < 0) fail("{}: \"sliding_window\" must be positive or null, got {}", c.origin(), window);
  return window;
}

void parse_qwen_sliding_window(const ConfigReader& c, ModelConfig& m) {
  const int64_t window = parse_sliding_window(c);
  if (window == 0) return;
  if (c.has("layer_types")) {
    m.sliding_layers = parse_layer_types(c, m.num_hidden_layers);
    if (c.get<bool>("use_sliding_window", true)) m.sliding_window = window;
  } else if (c.get<bool>("use_sliding_window", false)) {
    m.sliding_window = window;
    // As transformers: layer i slides when i >= max_window_layers, so a negative value means every layer.
    m.first_sliding_layer = std::max<int64_t>(0, c.get<int64_t>("max_window_layers", 0));
  }
}
namespace {

enum Slot { RESIDUAL, NORMED, QUERY, KEY, VALUE, MIXED, SUBLAYER_OUT, GATE, UP, ACTIVATED };

}  // namespace

LlamaFamilyModel::LlamaFamilyModel(const ModelSource& source, ModelConfig config, const LoadOptions& load,
                                   LlamaFamilyOptions options)
    : Model(source, std::move(config), load), options_(options) {
  const ModelConfig& c = config_;
  const int64_t d = c.hidden_size, V = c.vocab_size, hd = c.head_dim;
  const int64_t qdim = c.num_attention_heads * hd, kvdim = c.num_key_value_heads * hd;
  embed_tokens_ = weight("model.embed_tokens.weight", {V, d});
  check_layer_count("model.layers.", "input_layernorm.weight", "num_hidden_layers");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer L;
    L.input_norm = weight(p + "input_layernorm.weight", {d});
    L.q = linear(p + "self_attn.q_proj", qdim, d, options_.qkv_bias);
    L.k = linear(p + "self_attn.k_proj", kvdim, d, options_.qkv_bias);
    L.v = linear(p + "self_attn.v_proj", kvdim, d, options_.qkv_bias);
    L.o = linear(p + "self_attn.o_proj", d, qdim, options_.o_bias);
    if (options_.qk_norm) {
      L.q_norm = weight(p + "self_attn.q_norm.weight", {hd});
      L.k_norm = weight(p + "self_attn.k_norm.weight", {hd});
    }
    L.post_attention_norm = weight(p + "post_attention_layernorm.weight", {d});
    L.gate = linear(p + "mlp.gate_proj", c.intermediate_size, d, c.mlp_bias);
    L.up = linear(p + "mlp.up_proj", c.intermediate_size, d, c.mlp_bias);
    L.down = linear(p + "mlp.down_proj", d, c.intermediate_size, c.mlp_bias);
    layers_.push_back(L);
  }
  norm_ = weight("model.norm.weight", {d});
  lm_head_ = ops::Linear{c.tie_word_embeddings ? embed_tokens_ : weight("lm_head.weight", {V, d}), nullptr, d, V, false};
  std::vector<float> inv_freq(size_t(hd / 2));
  rope_inverse_frequencies(c.rope, hd, inv_freq.data());
  inv_freq_ = backend_->f32_constant(inv_freq);
}

ops::Linear LlamaFamilyModel::linear(const std::string& name, int64_t out, int64_t in, bool bias) {
  return ops::Linear{weight(name + ".weight", {out, in}), bias ? weight(name + ".bias", {out}) : nullptr, in, out,
                     false};
}

std::vector<std::string> LlamaFamilyModel::site_names() const {
  return layered_site_names({"hook_embed"},
                            {"hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
                             "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid",
                             "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post",
                             "hook_mlp_out", "hook_resid_post"},
                            true);
}

const void* LlamaFamilyModel::run(Pass& pass) {
  const ModelConfig& c = config_;
  const int64_t n = pass.rows(), d = c.hidden_size;
  const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim;
  const int64_t qdim = H * hd, kvdim = Hkv * hd, I = c.intermediate_size;
  const float eps = float(c.norm_eps);
  ops::Backend& be = *backend_;

  void *x = scratch(RESIDUAL, n * d), *h = scratch(NORMED, n * d), *q = scratch(QUERY, n * qdim);
  void *k = scratch(KEY, n * kvdim), *v = scratch(VALUE, n * kvdim), *z = scratch(MIXED, n * qdim);
  void *a = scratch(SUBLAYER_OUT, n * d), *gate = scratch(GATE, n * I), *up = scratch(UP, n * I);
  void* post = scratch(ACTIVATED, n * I);
  be.embed(embed_tokens_, d, x);
  emit(pass, "hook_embed", x, {d});
  emit(pass, "hidden_states.0", x, {d});

  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const Layer& L = layers_[size_t(i)];
    const std::string b = "blocks." + std::to_string(i) + ".";
    emit(pass, b + "hook_resid_pre", x, {d});
    be.rms_norm(x, n, d, L.input_norm, eps, h);
    emit(pass, b + "ln1.hook_normalized", h, {d});

    const ops::LinearOutput qkv[] = {{&L.q, q}, {&L.k, k}, {&L.v, v}};
    be.linears(h, n, qkv);
    if (options_.qk_norm) {
      be.rms_norm(q, n * H, hd, L.q_norm, eps, q);
      be.rms_norm(k, n * Hkv, hd, L.k_norm, eps, k);
      emit(pass, b + "attn.hook_q", q, {H, hd});
      emit(pass, b + "attn.hook_k", k, {Hkv, hd});
    } else {
      emit(pass, b + "attn.hook_q", q, {qdim});
      emit(pass, b + "attn.hook_k", k, {kvdim});
    }
    emit(pass, b + "attn.hook_v", v, {kvdim});
    be.rotary(q, H, hd, inv_freq_);
    be.rotary(k, Hkv, hd, inv_freq_);

    const ops::AttentionShape shape{H, Hkv, hd, float(1.0 / std::sqrt(double(hd))), c.sliding_window_at(i)};
    attend(pass, int(i), b, shape, q, k, v, kvdim, z);

    add_projection(pass, L.o, z, a, x, b + "hook_attn_out");
    emit(pass, b + "hook_resid_mid", x, {d});
    be.rms_norm(x, n, d, L.post_attention_norm, eps, h);
    emit(pass, b + "ln2.hook_normalized", h, {d});

    const ops::LinearOutput gate_up[] = {{&L.gate, gate}, {&L.up, up}};
    be.linears(h, n, gate_up);
    emit(pass, b + "mlp.hook_pre", gate, {I});
    emit(pass, b + "mlp.hook_pre_linear", up, {I});
    be.gated_activate(c.activation, gate, up, post, n * I);
    emit(pass, b + "mlp.hook_post", post, {I});
    add_projection(pass, L.down, post, a, x, b + "hook_mlp_out");
    emit(pass, b + "hook_resid_post", x, {d});
    if (i + 1 < c.num_hidden_layers) emit(pass, "hidden_states." + std::to_string(i + 1), x, {d});
  }

  be.rms_norm(x, n, d, norm_, eps, h);
  emit(pass, "ln_final.hook_normalized", h, {d});
  emit(pass, "hidden_states." + std::to_string(c.num_hidden_layers), h, {d});
  return h;
}

}  // namespace actcap
