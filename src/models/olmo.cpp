// OLMo 1 (model_type "olmo", HF OlmoForCausalLM): the Llama decoder with OlmoLayerNorm, a LayerNorm without weight
// or bias (eps fixed at 1e-5, computed in fp32 and rounded once) for the input, post-attention and final norms, and
// optional clip_qkv: q, k and v clamped to [-clip_qkv, clip_qkv] right after their projections (in place in HF).
// Sites: the Llama family's; attn.hook_q / hook_k / hook_v are the values attention uses, after the clamp.
#include <cmath>

#include "models/config_reader.h"
#include "models/registry.h"
#include "models/rope_frequencies.h"

namespace actcap {
namespace {

struct OlmoConfig : FamilyConfig {
  double clip_qkv = 0;  // 0: no clamp
};

void parse_olmo_config(const ConfigReader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.intermediate_size = c.get<int64_t>("intermediate_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = c.get<int64_t>("num_key_value_heads", m.num_attention_heads);
  // Not a field of OlmoConfig, but the modeling code reads getattr(config, "head_dim", hidden // heads).
  if (m.num_attention_heads > 0) m.head_dim = c.get<int64_t>("head_dim", m.hidden_size / m.num_attention_heads);
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings", 0);
  m.norm_eps = 1e-5;  // OlmoLayerNorm's, not configurable
  m.activation = parse_activation(c.get<std::string>("hidden_act", "silu"), c.origin());
  m.rope = parse_rope(c);
  m.attention_bias = c.get<bool>("attention_bias", false);
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  check_rotary_decoder(m, c.origin(), "norm_eps");
  auto family = std::make_shared<OlmoConfig>();
  family->clip_qkv = c.get<double>("clip_qkv", 0.0);
  // HF asserts clip_qkv > 0 when it is set (a zero or negative bound would zero or flip every projection).
  if (c.has("clip_qkv") && !(family->clip_qkv > 0 && std::isfinite(family->clip_qkv)))
    fail("{}: \"clip_qkv\" must be a positive number or null, got {}", c.origin(), family->clip_qkv);
  m.family = std::move(family);
}

enum Slot { RESIDUAL, NORMED, QUERY, KEY, VALUE, MIXED, SUBLAYER_OUT, GATE, UP, ACTIVATED };

class OlmoModel : public Model {
 public:
  OlmoModel(const ModelSource& source, ModelConfig config, const LoadOptions& load)
      : Model(source, std::move(config), load), clip_qkv_(float(config_.family_as<OlmoConfig>().clip_qkv)) {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, V = c.vocab_size, hd = c.head_dim, I = c.intermediate_size;
    const int64_t qdim = c.num_attention_heads * hd, kvdim = c.num_key_value_heads * hd;
    const bool bias = c.attention_bias;
    embed_tokens_ = weight("model.embed_tokens.weight", {V, d});
    // No norm has a weight, so the layer count is confirmed by the last layer's first projection.
    check_layer_count("model.layers.", "self_attn.q_proj.weight", "num_hidden_layers");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      layers_.push_back(Layer{linear(p + "self_attn.q_proj", qdim, d, bias),
                              linear(p + "self_attn.k_proj", kvdim, d, bias),
                              linear(p + "self_attn.v_proj", kvdim, d, bias),
                              linear(p + "self_attn.o_proj", d, qdim, bias), linear(p + "mlp.gate_proj", I, d, false),
                              linear(p + "mlp.up_proj", I, d, false), linear(p + "mlp.down_proj", d, I, false)});
    }
    lm_head_ =
        ops::Linear{c.tie_word_embeddings ? embed_tokens_ : weight("lm_head.weight", {V, d}), nullptr, d, V, false};
    // The backends' layer_norm takes a weight: ones multiply exactly, leaving one rounding as in HF.
    ones_.assign(size_t(d), 1.0f);
    unit_weight_ = backend_->weight(TensorView{ones_.data(), DType::F32, {d}});
    std::vector<float> inv_freq(size_t(hd / 2));
    rope_inverse_frequencies(c.rope, hd, inv_freq.data());
    inv_freq_ = backend_->f32_constant(inv_freq);
  }

  const ModelConfig& config() const override { return config_; }

  std::vector<std::string> site_names() const override {
    return layered_site_names({"hook_embed"},
                              {"hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
                               "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid",
                               "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post",
                               "hook_mlp_out", "hook_resid_post"},
                              true);
  }

 protected:
  const void* run(Pass& pass) override {
    const ModelConfig& c = config_;
    const int64_t n = pass.rows(), d = c.hidden_size;
    const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim;
    const int64_t qdim = H * hd, kvdim = Hkv * hd, I = c.intermediate_size;
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
      norm(x, n, h);
      emit(pass, b + "ln1.hook_normalized", h, {d});

      const ops::LinearOutput qkv[] = {{&L.q, q}, {&L.k, k}, {&L.v, v}};
      be.linears(h, n, qkv);
      if (clip_qkv_ > 0) {
        be.clamp(q, clip_qkv_, n * qdim);
        be.clamp(k, clip_qkv_, n * kvdim);
        be.clamp(v, clip_qkv_, n * kvdim);
      }
      emit(pass, b + "attn.hook_q", q, {qdim});
      emit(pass, b + "attn.hook_k", k, {kvdim});
      emit(pass, b + "attn.hook_v", v, {kvdim});
      be.rotary(q, H, hd, inv_freq_);
      be.rotary(k, Hkv, hd, inv_freq_);

      const ops::AttentionShape shape{H, Hkv, hd, float(1.0 / std::sqrt(double(hd))), 0};
      attend(pass, int(i), b, shape, q, k, v, kvdim, z);
      add_projection(pass, L.o, z, a, x, b + "hook_attn_out");
      emit(pass, b + "hook_resid_mid", x, {d});
      norm(x, n, h);
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

    norm(x, n, h);
    emit(pass, "ln_final.hook_normalized", h, {d});
    emit(pass, "hidden_states." + std::to_string(c.num_hidden_layers), h, {d});
    return h;
  }

  const ops::Linear& lm_head() const override { return lm_head_; }

 private:
  struct Layer {
    ops::Linear q, k, v, o, gate, up, down;
  };

  ops::Linear linear(const std::string& name, int64_t out, int64_t in, bool bias) {
    return ops::Linear{weight(name + ".weight", {out, in}), bias ? weight(name + ".bias", {out}) : nullptr, in, out,
                       false};
  }

  // OlmoLayerNorm: no weight, no bias.
  void norm(const void* in, int64_t rows, void* out) {
    backend_->layer_norm(in, rows, config_.hidden_size, unit_weight_, nullptr, float(config_.norm_eps), out);
  }

  float clip_qkv_;
  const void* embed_tokens_;
  std::vector<Layer> layers_;
  ops::Linear lm_head_;
  std::vector<float> ones_;  // the CPU backend uses fp32 host weights in place
  const void* unit_weight_;
  const float* inv_freq_;
};

std::unique_ptr<Model> make_olmo_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<OlmoModel>(source, std::move(config), load);
}

}  // namespace

const Architecture& olmo_architecture() {
  static const Architecture row{"olmo", parse_olmo_config, make_olmo_model, ArchitectureTraits{}};
  return row;
}

}  // namespace actcap
