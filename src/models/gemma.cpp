// Gemma 2 (gemma2) and Gemma 3 (gemma3_text, and the text decoder of a multimodal gemma3 checkpoint): a
// sandwich-norm decoder. Per layer four RMSNorms of Gemma's kind ((1 + w) applied in fp32): before and after
// attention, before and after the gated gelu MLP; the embedding scaled by sqrt(hidden_size) held in the
// activation dtype; attention scaled by query_pre_attn_scalar^-0.5. Gemma 2 soft-caps attention scores and the
// final logits (tanh(x / cap) * cap); Gemma 3 normalises q and k per head and uses a local rotary base on its
// sliding-window layers.
#include <cmath>

#include "core/dtype.h"
#include "models/config_reader.h"
#include "models/registry.h"
#include "models/rope_frequencies.h"

namespace actcap {
namespace {

using nlohmann::json;

struct GemmaConfig : FamilyConfig {
  double query_pre_attn_scalar = 256;  // attention scores are multiplied by its -0.5 power
  float attn_logit_softcap = 0;        // 0 = none
  float final_logit_softcap = 0;       // 0 = none
  bool qk_norm = false;                // gemma3: q_norm / k_norm over head_dim
  RopeConfig local_rope;               // of the sliding layers (gemma3's rope_local_base_freq); gemma2: the global one
  // Without layer_types in config.json, layer i slides unless (i + 1) % sliding_window_pattern == 0.
  int64_t sliding_window_pattern = 2;

  bool sliding(const ModelConfig& m, int64_t layer) const {
    return m.sliding_layers.empty() ? (layer + 1) % sliding_window_pattern != 0 : bool(m.sliding_layers[size_t(layer)]);
  }
};

// A soft-capping key: absent gives transformers' default, null none (0); otherwise it must be positive.
float parse_softcap(const ConfigReader& c, const char* key, double fallback) {
  if (!c.json().contains(key)) return float(fallback);
  if (!c.has(key)) return 0.0f;
  const double cap = c.get<double>(key);
  if (!std::isfinite(cap) || cap <= 0) fail("{}: \"{}\" must be positive or null, got {}", c.origin(), key, cap);
  return float(cap);
}

// The keys Gemma2Config and Gemma3TextConfig share, with their defaults.
void parse_gemma_decoder(const ConfigReader& c, ModelConfig& m, GemmaConfig& g) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.intermediate_size = c.get<int64_t>("intermediate_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = c.get<int64_t>("num_key_value_heads", m.num_attention_heads);
  m.head_dim = c.get<int64_t>("head_dim", 256);
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings", 0);
  m.norm_eps = c.get<double>("rms_norm_eps", 1e-6);
  m.activation = parse_activation(c.get<std::string>("hidden_activation", "gelu_pytorch_tanh"), c.origin());
  m.attention_bias = c.get<bool>("attention_bias", false);
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", true);
  check_rotary_decoder(m, c.origin(), "rms_norm_eps");
  g.query_pre_attn_scalar = c.get<double>("query_pre_attn_scalar", 256.0);
  if (!std::isfinite(g.query_pre_attn_scalar) || g.query_pre_attn_scalar <= 0)
    fail("{}: \"query_pre_attn_scalar\" must be positive, got {}", c.origin(), g.query_pre_attn_scalar);
  m.sliding_window = c.get<int64_t>("sliding_window", 4096);
  check_sizes(c.origin(), {{"sliding_window", m.sliding_window}});
  m.sliding_layers = parse_layer_types(c, m.num_hidden_layers);
  if (c.get<bool>("use_bidirectional_attention", false))
    fail("{}: \"use_bidirectional_attention\" (EmbeddingGemma) is not supported: the engine is causal", c.origin());
}

void parse_gemma2_config(const ConfigReader& c, ModelConfig& m) {
  auto g = std::make_shared<GemmaConfig>();
  parse_gemma_decoder(c, m, *g);
  m.rope = parse_rope(c);
  g->local_rope = m.rope;
  g->attn_logit_softcap = parse_softcap(c, "attn_logit_softcapping", 50.0);
  g->final_logit_softcap = parse_softcap(c, "final_logit_softcapping", 30.0);
  m.family = std::move(g);
}

// The rotary parameters of one layer type: parse_rope over {"rope_parameters": parameters}.
RopeConfig parse_rope_parameters(const json& parameters, const std::string& origin) {
  const json wrapped = {{"rope_parameters", parameters}};
  return parse_rope(ConfigReader(wrapped, origin));
}

// Gemma3TextConfig's keys, from config.json itself (gemma3_text) or its text_config (gemma3). Rotary tables:
// transformers 5 nests rope_parameters by layer type; transformers 4 gives the full layers rope_theta (default
// 1e6) with rope_scaling, and the sliding ones rope_local_base_freq (default 1e4) unscaled.
void parse_gemma3_decoder(const ConfigReader& c, ModelConfig& m, GemmaConfig& g) {
  parse_gemma_decoder(c, m, g);
  g.qk_norm = true;
  // Gemma3Attention passes no softcap to the attention function: attn_logit_softcapping is never used.
  g.sliding_window_pattern = c.get<int64_t>("sliding_window_pattern", 6);
  check_sizes(c.origin(), {{"sliding_window_pattern", g.sliding_window_pattern}});
  if (c.has("rope_parameters") && c.at("rope_parameters").contains("full_attention")) {
    const json& by_type = c.at("rope_parameters");
    if (!by_type.contains("sliding_attention"))
      fail("{}: \"rope_parameters\" has full_attention but no sliding_attention", c.origin());
    m.rope = parse_rope_parameters(by_type.at("full_attention"), c.origin());
    g.local_rope = parse_rope_parameters(by_type.at("sliding_attention"), c.origin());
    return;
  }
  json global = c.json();
  if (!c.has("rope_parameters") && !c.has("rope_theta")) global["rope_theta"] = 1e6;
  m.rope = parse_rope(ConfigReader(global, c.origin()));
  g.local_rope.theta = c.get<double>("rope_local_base_freq", 10000.0);
  if (!std::isfinite(g.local_rope.theta) || g.local_rope.theta <= 0)
    fail("{}: \"rope_local_base_freq\" must be positive, got {}", c.origin(), g.local_rope.theta);
}

void parse_gemma3_text_config(const ConfigReader& c, ModelConfig& m) {
  auto g = std::make_shared<GemmaConfig>();
  parse_gemma3_decoder(c, m, *g);
  g->final_logit_softcap = parse_softcap(c, "final_logit_softcapping", 0.0);
  m.family = std::move(g);
}

// Gemma3ForConditionalGeneration: the text decoder's keys (vocab_size included) are under text_config; its
// forward never soft-caps the logits. The vision tower's keys are not read.
void parse_gemma3_config(const ConfigReader& c, ModelConfig& m) {
  if (!c.has("text_config") || !c.at("text_config").is_object())
    fail("{}: a gemma3 config needs a \"text_config\" object (the text decoder's keys)", c.origin());
  const ConfigReader text(c.at("text_config"), c.origin());
  m.vocab_size = text.get<int64_t>("vocab_size", 262208);
  auto g = std::make_shared<GemmaConfig>();
  parse_gemma3_decoder(text, m, *g);
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", true);
  m.family = std::move(g);
}

enum Slot { RESIDUAL, NORMED, QUERY, KEY, VALUE, MIXED, SUBLAYER_OUT, GATE, UP, ACTIVATED };

// Where a checkpoint keeps the decoder: Gemma2ForCausalLM / Gemma3ForCausalLM under model.*; a multimodal
// Gemma3ForConditionalGeneration under model.language_model.* (transformers 5, head lm_head.*) or
// language_model.model.* (transformers 4, head language_model.lm_head.*). Its vision tower and projector
// (vision_tower.*, multi_modal_projector.*, or under model.) are never read.
struct WeightNames {
  std::string decoder, head;
};

class GemmaModel : public Model {
 public:
  GemmaModel(const ModelSource& source, ModelConfig config, const LoadOptions& load)
      : Model(source, std::move(config), load), gemma_(config_.family_as<GemmaConfig>()) {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, V = c.vocab_size, hd = c.head_dim, I = c.intermediate_size;
    const int64_t qdim = c.num_attention_heads * hd, kvdim = c.num_key_value_heads * hd;
    const WeightNames names = weight_names();
    embed_tokens_ = weight(names.decoder + "embed_tokens.weight", {V, d});
    check_layer_count(names.decoder + "layers.", "input_layernorm.weight", "num_hidden_layers");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = names.decoder + "layers." + std::to_string(i) + ".";
      Layer L;
      L.input_norm = weight(p + "input_layernorm.weight", {d});
      L.q = linear(p + "self_attn.q_proj", qdim, d, c.attention_bias);
      L.k = linear(p + "self_attn.k_proj", kvdim, d, c.attention_bias);
      L.v = linear(p + "self_attn.v_proj", kvdim, d, c.attention_bias);
      L.o = linear(p + "self_attn.o_proj", d, qdim, c.attention_bias);
      if (gemma_.qk_norm) {
        L.q_norm = weight(p + "self_attn.q_norm.weight", {hd});
        L.k_norm = weight(p + "self_attn.k_norm.weight", {hd});
      }
      L.post_attention_norm = weight(p + "post_attention_layernorm.weight", {d});
      L.pre_feedforward_norm = weight(p + "pre_feedforward_layernorm.weight", {d});
      L.post_feedforward_norm = weight(p + "post_feedforward_layernorm.weight", {d});
      L.gate = linear(p + "mlp.gate_proj", I, d, false);
      L.up = linear(p + "mlp.up_proj", I, d, false);
      L.down = linear(p + "mlp.down_proj", d, I, false);
      layers_.push_back(L);
    }
    norm_ = weight(names.decoder + "norm.weight", {d});
    lm_head_ = ops::Linear{c.tie_word_embeddings ? embed_tokens_ : weight(names.head + "weight", {V, d}), nullptr, d,
                           V, false};
    global_inv_freq_ = inverse_frequencies(c.rope);
    RopeConfig local = gemma_.local_rope;
    local.frequencies_dtype = c.rope.frequencies_dtype;  // a checkpoint-dtype cast rounds both tables
    local_inv_freq_ = inverse_frequencies(local);
  }

  const ModelConfig& config() const override { return config_; }

  std::vector<std::string> site_names() const override {
    return layered_site_names(
        {"hook_embed"},
        {"hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern",
         "attn.hook_z", "hook_attn_out", "ln1_post.hook_normalized", "hook_resid_mid", "ln2.hook_normalized",
         "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out", "ln2_post.hook_normalized",
         "hook_resid_post"},
        true);
  }

 protected:
  const void* run(Pass& pass) override;
  const ops::Linear& lm_head() const override { return lm_head_; }
  float final_logit_softcap() const override { return gemma_.final_logit_softcap; }

 private:
  struct Layer {
    const void* input_norm;
    ops::Linear q, k, v, o;
    const void* q_norm = nullptr;
    const void* k_norm = nullptr;
    const void *post_attention_norm, *pre_feedforward_norm, *post_feedforward_norm;
    ops::Linear gate, up, down;
  };

  WeightNames weight_names() const {
    if (config_.model_type != "gemma3") return {"model.", "lm_head."};
    if (has_weight("model.language_model.embed_tokens.weight")) return {"model.language_model.", "lm_head."};
    return {"language_model.model.", "language_model.lm_head."};
  }
  ops::Linear linear(const std::string& name, int64_t out, int64_t in, bool bias) {
    return ops::Linear{weight(name + ".weight", {out, in}), bias ? weight(name + ".bias", {out}) : nullptr, in, out,
                       false};
  }
  const float* inverse_frequencies(const RopeConfig& rope) {
    std::vector<float> inv_freq(size_t(config_.head_dim / 2));
    rope_inverse_frequencies(rope, config_.head_dim, inv_freq.data());
    return backend_->f32_constant(inv_freq);
  }

  const GemmaConfig& gemma_;
  const void* embed_tokens_;
  std::vector<Layer> layers_;
  const void* norm_;
  ops::Linear lm_head_;
  const float* global_inv_freq_;
  const float* local_inv_freq_;
};

const void* GemmaModel::run(Pass& pass) {
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
  // HF multiplies by torch.tensor(sqrt(hidden_size)) in the activation dtype (55.4256 becomes 55.5 in bf16)
  be.scale(x, round_to(be.dtype(), float(std::sqrt(double(d)))), n * d);
  emit(pass, "hook_embed", x, {d});
  emit(pass, "hidden_states.0", x, {d});

  ops::AttentionShape shape{H, Hkv, hd, float(std::pow(gemma_.query_pre_attn_scalar, -0.5)), 0};
  shape.softcap = gemma_.attn_logit_softcap;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const Layer& L = layers_[size_t(i)];
    const std::string b = "blocks." + std::to_string(i) + ".";
    emit(pass, b + "hook_resid_pre", x, {d});
    be.gemma_rms_norm(x, n, d, L.input_norm, eps, h);
    emit(pass, b + "ln1.hook_normalized", h, {d});

    const ops::LinearOutput qkv[] = {{&L.q, q}, {&L.k, k}, {&L.v, v}};
    be.linears(h, n, qkv);
    if (gemma_.qk_norm) {
      be.gemma_rms_norm(q, n * H, hd, L.q_norm, eps, q);
      be.gemma_rms_norm(k, n * Hkv, hd, L.k_norm, eps, k);
      emit(pass, b + "attn.hook_q", q, {H, hd});
      emit(pass, b + "attn.hook_k", k, {Hkv, hd});
    } else {
      emit(pass, b + "attn.hook_q", q, {qdim});
      emit(pass, b + "attn.hook_k", k, {kvdim});
    }
    emit(pass, b + "attn.hook_v", v, {kvdim});
    const bool sliding = gemma_.sliding(c, i);
    shape.sliding_window = sliding ? c.sliding_window : 0;
    const float* inv_freq = sliding ? local_inv_freq_ : global_inv_freq_;
    be.rotary(q, H, hd, inv_freq);
    be.rotary(k, Hkv, hd, inv_freq);
    attend(pass, int(i), b, shape, q, k, v, kvdim, z);

    be.linear(L.o, z, n, a);
    emit(pass, b + "hook_attn_out", a, {d});
    be.gemma_rms_norm(a, n, d, L.post_attention_norm, eps, a);
    emit(pass, b + "ln1_post.hook_normalized", a, {d});
    be.add(x, a, x, n * d);
    emit(pass, b + "hook_resid_mid", x, {d});
    be.gemma_rms_norm(x, n, d, L.pre_feedforward_norm, eps, h);
    emit(pass, b + "ln2.hook_normalized", h, {d});

    const ops::LinearOutput gate_up[] = {{&L.gate, gate}, {&L.up, up}};
    be.linears(h, n, gate_up);
    emit(pass, b + "mlp.hook_pre", gate, {I});
    emit(pass, b + "mlp.hook_pre_linear", up, {I});
    be.gated_activate(c.activation, gate, up, post, n * I);
    emit(pass, b + "mlp.hook_post", post, {I});
    be.linear(L.down, post, n, a);
    emit(pass, b + "hook_mlp_out", a, {d});
    be.gemma_rms_norm(a, n, d, L.post_feedforward_norm, eps, a);
    emit(pass, b + "ln2_post.hook_normalized", a, {d});
    be.add(x, a, x, n * d);
    emit(pass, b + "hook_resid_post", x, {d});
    if (i + 1 < c.num_hidden_layers) emit(pass, "hidden_states." + std::to_string(i + 1), x, {d});
  }

  be.gemma_rms_norm(x, n, d, norm_, eps, h);
  emit(pass, "ln_final.hook_normalized", h, {d});
  emit(pass, "hidden_states." + std::to_string(c.num_hidden_layers), h, {d});
  return h;
}

std::unique_ptr<Model> make_gemma_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<GemmaModel>(source, std::move(config), load);
}

}  // namespace

const Architecture& gemma2_architecture() {
  static const Architecture row{"gemma2", parse_gemma2_config, make_gemma_model, ArchitectureTraits{}};
  return row;
}

const Architecture& gemma3_text_architecture() {
  static const Architecture row{"gemma3_text", parse_gemma3_text_config, make_gemma_model, ArchitectureTraits{}};
  return row;
}

const Architecture& gemma3_architecture() {
  static const Architecture row{"gemma3", parse_gemma3_config, make_gemma_model, ArchitectureTraits{}};
  return row;
}

}  // namespace actcap
