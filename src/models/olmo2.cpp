// OLMo 2 (model_type "olmo2", HF Olmo2ForCausalLM): a Llama-shaped decoder without pre-norms. Each sub-block's
// output goes through an RMSNorm (post_attention_layernorm, post_feedforward_layernorm) before the residual add;
// q_norm / k_norm are RMSNorms over the whole q / k projection (heads * head_dim values, not per head), applied
// before the head view and rotary. In bf16/fp16 two roundings differ from Llama's, as transformers 5's
// modeling_olmo2.py computes them: Olmo2RMSNorm multiplies its weight before casting back, and the rotation uses
// fp32 cos/sin and casts q/k back afterwards (ops rms_norm_fp32_weight and rotary_fp32_tables).
//
// Sites: the Llama family's without ln1 / ln2 (there is no pre-norm to capture), plus the post-norm outputs under
// TransformerLens' names for Gemma-2's post-norms: blocks.<i>.ln1_post.hook_normalized (what the attention adds to
// the residual) and blocks.<i>.ln2_post.hook_normalized (what the MLP adds). hook_attn_out / hook_mlp_out stay
// the raw o_proj / down_proj outputs, as HF's self_attn / mlp modules return them; attn.hook_q / attn.hook_k are
// q_norm / k_norm's outputs, [heads * head_dim] as HF's modules return them (before rotary, like qwen3's).
#include <cmath>

#include "models/config_reader.h"
#include "models/registry.h"
#include "models/rope_frequencies.h"

namespace actcap {
namespace {

void parse_olmo2_config(const ConfigReader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.intermediate_size = c.get<int64_t>("intermediate_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = c.get<int64_t>("num_key_value_heads", m.num_attention_heads);
  // Not a field of Olmo2Config, but the modeling code reads getattr(config, "head_dim", hidden // heads).
  if (m.num_attention_heads > 0) m.head_dim = c.get<int64_t>("head_dim", m.hidden_size / m.num_attention_heads);
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings", 0);
  m.norm_eps = c.get<double>("rms_norm_eps", 1e-5);
  m.activation = parse_activation(c.get<std::string>("hidden_act", "silu"), c.origin());
  m.rope = parse_rope(c);
  m.attention_bias = c.get<bool>("attention_bias", false);
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  check_rotary_decoder(m, c.origin(), "rms_norm_eps");
}

enum Slot { RESIDUAL, QUERY, KEY, VALUE, MIXED, SUBLAYER_OUT, GATE, UP, ACTIVATED, FINAL };

class Olmo2Model : public Model {
 public:
  Olmo2Model(const ModelSource& source, ModelConfig config, const LoadOptions& load)
      : Model(source, std::move(config), load) {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, V = c.vocab_size, hd = c.head_dim, I = c.intermediate_size;
    const int64_t qdim = c.num_attention_heads * hd, kvdim = c.num_key_value_heads * hd;
    const bool bias = c.attention_bias;
    embed_tokens_ = weight("model.embed_tokens.weight", {V, d});
    check_layer_count("model.layers.", "post_attention_layernorm.weight", "num_hidden_layers");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      Layer L;
      L.q = linear(p + "self_attn.q_proj", qdim, d, bias);
      L.k = linear(p + "self_attn.k_proj", kvdim, d, bias);
      L.v = linear(p + "self_attn.v_proj", kvdim, d, bias);
      L.o = linear(p + "self_attn.o_proj", d, qdim, bias);
      L.q_norm = weight(p + "self_attn.q_norm.weight", {qdim});
      L.k_norm = weight(p + "self_attn.k_norm.weight", {kvdim});
      L.post_attention_norm = weight(p + "post_attention_layernorm.weight", {d});
      L.gate = linear(p + "mlp.gate_proj", I, d, false);
      L.up = linear(p + "mlp.up_proj", I, d, false);
      L.down = linear(p + "mlp.down_proj", d, I, false);
      L.post_feedforward_norm = weight(p + "post_feedforward_layernorm.weight", {d});
      layers_.push_back(L);
    }
    norm_ = weight("model.norm.weight", {d});
    lm_head_ =
        ops::Linear{c.tie_word_embeddings ? embed_tokens_ : weight("lm_head.weight", {V, d}), nullptr, d, V, false};
    std::vector<float> inv_freq(size_t(hd / 2));
    rope_inverse_frequencies(c.rope, hd, inv_freq.data());
    inv_freq_ = backend_->f32_constant(inv_freq);
  }

  const ModelConfig& config() const override { return config_; }

  std::vector<std::string> site_names() const override {
    return layered_site_names({"hook_embed"},
                              {"hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern",
                               "attn.hook_z", "hook_attn_out", "ln1_post.hook_normalized", "hook_resid_mid",
                               "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out",
                               "ln2_post.hook_normalized", "hook_resid_post"},
                              true);
  }

 protected:
  const void* run(Pass& pass) override {
    const ModelConfig& c = config_;
    const int64_t n = pass.rows(), d = c.hidden_size;
    const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim;
    const int64_t qdim = H * hd, kvdim = Hkv * hd, I = c.intermediate_size;
    const float eps = float(c.norm_eps);
    ops::Backend& be = *backend_;

    void *x = scratch(RESIDUAL, n * d), *q = scratch(QUERY, n * qdim), *k = scratch(KEY, n * kvdim);
    void *v = scratch(VALUE, n * kvdim), *z = scratch(MIXED, n * qdim), *a = scratch(SUBLAYER_OUT, n * d);
    void *gate = scratch(GATE, n * I), *up = scratch(UP, n * I), *post = scratch(ACTIVATED, n * I);
    be.embed(embed_tokens_, d, x);
    emit(pass, "hook_embed", x, {d});
    emit(pass, "hidden_states.0", x, {d});

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const Layer& L = layers_[size_t(i)];
      const std::string b = "blocks." + std::to_string(i) + ".";
      emit(pass, b + "hook_resid_pre", x, {d});

      const ops::LinearOutput qkv[] = {{&L.q, q}, {&L.k, k}, {&L.v, v}};
      be.linears(x, n, qkv);
      be.rms_norm_fp32_weight(q, n, qdim, L.q_norm, eps, q);
      be.rms_norm_fp32_weight(k, n, kvdim, L.k_norm, eps, k);
      emit(pass, b + "attn.hook_q", q, {qdim});
      emit(pass, b + "attn.hook_k", k, {kvdim});
      emit(pass, b + "attn.hook_v", v, {kvdim});
      be.rotary_fp32_tables(q, H, hd, inv_freq_);
      be.rotary_fp32_tables(k, Hkv, hd, inv_freq_);

      const ops::AttentionShape shape{H, Hkv, hd, float(1.0 / std::sqrt(double(hd))), 0};
      attend(pass, int(i), b, shape, q, k, v, kvdim, z);
      be.linear(L.o, z, n, a);
      add_post_normed(pass, b, "hook_attn_out", "ln1_post.hook_normalized", L.post_attention_norm, a, x);
      emit(pass, b + "hook_resid_mid", x, {d});

      const ops::LinearOutput gate_up[] = {{&L.gate, gate}, {&L.up, up}};
      be.linears(x, n, gate_up);
      emit(pass, b + "mlp.hook_pre", gate, {I});
      emit(pass, b + "mlp.hook_pre_linear", up, {I});
      be.gated_activate(c.activation, gate, up, post, n * I);
      emit(pass, b + "mlp.hook_post", post, {I});
      be.linear(L.down, post, n, a);
      add_post_normed(pass, b, "hook_mlp_out", "ln2_post.hook_normalized", L.post_feedforward_norm, a, x);
      emit(pass, b + "hook_resid_post", x, {d});
      if (i + 1 < c.num_hidden_layers) emit(pass, "hidden_states." + std::to_string(i + 1), x, {d});
    }

    void* h = scratch(FINAL, n * d);
    be.rms_norm_fp32_weight(x, n, d, norm_, eps, h);
    emit(pass, "ln_final.hook_normalized", h, {d});
    emit(pass, "hidden_states." + std::to_string(c.num_hidden_layers), h, {d});
    return h;
  }

  const ops::Linear& lm_head() const override { return lm_head_; }

 private:
  struct Layer {
    ops::Linear q, k, v, o;
    const void* q_norm;
    const void* k_norm;
    const void* post_attention_norm;
    ops::Linear gate, up, down;
    const void* post_feedforward_norm;
  };

  ops::Linear linear(const std::string& name, int64_t out, int64_t in, bool bias) {
    return ops::Linear{weight(name + ".weight", {out, in}), bias ? weight(name + ".bias", {out}) : nullptr, in, out,
                       false};
  }

  // A sub-block's output `out` [rows, hidden] (site `raw_site`) is normalised in place (site `normed_site`),
  // then added to the residual.
  void add_post_normed(const Pass& pass, const std::string& block, const char* raw_site, const char* normed_site,
                       const void* norm, void* out, void* residual) {
    const int64_t d = config_.hidden_size;
    emit(pass, block + raw_site, out, {d});
    backend_->rms_norm_fp32_weight(out, pass.rows(), d, norm, float(config_.norm_eps), out);
    emit(pass, block + normed_site, out, {d});
    backend_->add(residual, out, residual, pass.rows() * d);
  }

  const void* embed_tokens_;
  std::vector<Layer> layers_;
  const void* norm_;
  ops::Linear lm_head_;
  const float* inv_freq_;
};

std::unique_ptr<Model> make_olmo2_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<Olmo2Model>(source, std::move(config), load);
}

}  // namespace

const Architecture& olmo2_architecture() {
  static const Architecture row{"olmo2", parse_olmo2_config, make_olmo2_model, ArchitectureTraits{}};
  return row;
}

}  // namespace actcap
