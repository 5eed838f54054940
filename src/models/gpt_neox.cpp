// GPT-NeoX (Pythia): fused query_key_value whose rows hold q, k and v of each head in turn ([heads, 3, head_dim]),
// rotary over the first int(head_dim * rotary_pct) dims of each head, LayerNorms with bias, a parallel
// (use_parallel_residual: x + attn(ln1(x)) + mlp(ln2(x))) or sequential residual, gelu MLP with biases, and an
// untied embed_out head.
#include <cmath>

#include "models/config_reader.h"
#include "models/registry.h"
#include "models/rope_frequencies.h"

namespace actcap {
namespace {

struct GptNeoxConfig : FamilyConfig {
  bool use_parallel_residual = true;
};

// transformers 4 keys rotary_emb_base and rotary_pct; transformers 5 moves both into rope_parameters.
void parse_gpt_neox_rope(const ConfigReader& c, ModelConfig& m) {
  m.rope = parse_rope(c);
  const char* partial_key = "rotary_pct";
  double partial = c.get<double>("rotary_pct", 0.25);
  if (c.has("rope_parameters")) {
    const ConfigReader parameters(c.at("rope_parameters"), c.origin());
    if (parameters.has("partial_rotary_factor")) {
      partial_key = "partial_rotary_factor";
      partial = parameters.get<double>("partial_rotary_factor");
    }
  } else {
    m.rope.theta = c.get<double>("rotary_emb_base", 10000.0);
    if (!std::isfinite(m.rope.theta) || m.rope.theta <= 0)
      fail("{}: \"rotary_emb_base\" must be positive, got {}", c.origin(), m.rope.theta);
  }
  m.rope.partial_rotary_factor = partial;
  check_partial_rotary(m.rope, m.head_dim, c.origin(), partial_key);
}

void parse_gpt_neox_config(const ConfigReader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.intermediate_size = c.get<int64_t>("intermediate_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = m.num_attention_heads;
  if (m.num_attention_heads > 0) m.head_dim = m.hidden_size / m.num_attention_heads;
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings", 0);
  m.norm_eps = c.get<double>("layer_norm_eps", 1e-5);
  m.activation = parse_activation(c.get<std::string>("hidden_act", "gelu"), c.origin());
  m.attention_bias = c.get<bool>("attention_bias", true);
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  auto family = std::make_shared<GptNeoxConfig>();
  family->use_parallel_residual = c.get<bool>("use_parallel_residual", true);
  m.family = std::move(family);
  if (m.num_attention_heads > 0 && m.hidden_size % m.num_attention_heads != 0)
    fail("{}: \"hidden_size\" ({}) is not divisible by \"num_attention_heads\" ({})", c.origin(), m.hidden_size,
         m.num_attention_heads);
  check_rotary_decoder(m, c.origin(), "layer_norm_eps");
  parse_gpt_neox_rope(c, m);
}

enum Slot { RESIDUAL, NORMED, QKV, QUERY, KEY, VALUE, MIXED, ATTN_OUT, MLP_HIDDEN, MLP_OUT };

class GptNeoxModel : public Model {
 public:
  GptNeoxModel(const ModelSource& source, ModelConfig config, const LoadOptions& load)
      : Model(source, std::move(config), load), parallel_(config_.family_as<GptNeoxConfig>().use_parallel_residual) {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
    embed_in_ = weight("gpt_neox.embed_in.weight", {V, d});
    check_layer_count("gpt_neox.layers.", "input_layernorm.weight", "num_hidden_layers");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "gpt_neox.layers." + std::to_string(i) + ".";
      Layer L;
      L.ln1 = norm(p + "input_layernorm", d);
      L.ln2 = norm(p + "post_attention_layernorm", d);
      L.qkv = linear(p + "attention.query_key_value", 3 * d, d, c.attention_bias);
      L.dense = linear(p + "attention.dense", d, d, c.attention_bias);
      L.up = linear(p + "mlp.dense_h_to_4h", I, d, true);
      L.down = linear(p + "mlp.dense_4h_to_h", d, I, true);
      layers_.push_back(L);
    }
    final_norm_ = norm("gpt_neox.final_layer_norm", d);
    lm_head_ = ops::Linear{c.tie_word_embeddings ? embed_in_ : weight("embed_out.weight", {V, d}), nullptr, d, V};
    rotary_ = upload_rotary(*backend_, rotary_frequencies(c.rope, c.head_dim));
  }

  const ModelConfig& config() const override { return config_; }

  std::vector<std::string> site_names() const override {
    std::vector<std::string> block = {"hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k",
                                      "attn.hook_v", "attn.hook_pattern", "attn.hook_z", "hook_attn_out"};
    if (!parallel_) block.push_back("hook_resid_mid");
    for (const char* site : {"ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out",
                             "hook_resid_post"})
      block.push_back(site);
    return layered_site_names({"hook_embed"}, block, true);
  }

 protected:
  const void* run(Pass& pass) override {
    const ModelConfig& c = config_;
    const int64_t n = pass.rows(), d = c.hidden_size, H = c.num_attention_heads, hd = c.head_dim;
    const int64_t I = c.intermediate_size;
    const float eps = float(c.norm_eps);
    ops::Backend& be = *backend_;

    void *x = scratch(RESIDUAL, n * d), *h = scratch(NORMED, n * d), *qkv = scratch(QKV, n * 3 * d);
    void *q = scratch(QUERY, n * d), *k = scratch(KEY, n * d), *v = scratch(VALUE, n * d);
    void *z = scratch(MIXED, n * d), *a = scratch(ATTN_OUT, n * d), *hidden = scratch(MLP_HIDDEN, n * I);
    void* m = scratch(MLP_OUT, n * d);
    be.embed(embed_in_, d, x);
    emit(pass, "hook_embed", x, {d});
    emit(pass, "hidden_states.0", x, {d});

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const Layer& L = layers_[size_t(i)];
      const std::string b = "blocks." + std::to_string(i) + ".";
      emit(pass, b + "hook_resid_pre", x, {d});
      be.layer_norm(x, n, d, L.ln1.weight, L.ln1.bias, eps, h);
      emit(pass, b + "ln1.hook_normalized", h, {d});

      // qkv rows are [heads, 3, head_dim]: per (row, head), q then k then v.
      be.linear(L.qkv, h, n, qkv);
      be.copy_rows(q, hd, qkv, 3 * hd, hd, n * H);
      be.copy_rows(k, hd, at(qkv, hd), 3 * hd, hd, n * H);
      be.copy_rows(v, hd, at(qkv, 2 * hd), 3 * hd, hd, n * H);
      emit(pass, b + "attn.hook_q", q, {H, hd});
      emit(pass, b + "attn.hook_k", k, {H, hd});
      emit(pass, b + "attn.hook_v", v, {H, hd});
      be.rotary(q, H, hd, rotary_);
      be.rotary(k, H, hd, rotary_);
      const ops::AttentionShape shape{H, H, hd, float(1.0 / std::sqrt(double(hd))), 0};
      attend(pass, int(i), b, shape, q, k, v, d, z);
      be.linear(L.dense, z, n, a);
      emit(pass, b + "hook_attn_out", a, {d});

      if (parallel_) {
        // HF: mlp(ln2(x)) + attn + x, summed in that order
        be.layer_norm(x, n, d, L.ln2.weight, L.ln2.bias, eps, h);
        emit(pass, b + "ln2.hook_normalized", h, {d});
        be.linear(L.up, h, n, hidden);
        emit(pass, b + "mlp.hook_pre", hidden, {I});
        be.activate(c.activation, hidden, n * I);
        emit(pass, b + "mlp.hook_post", hidden, {I});
        be.linear(L.down, hidden, n, m);
        emit(pass, b + "hook_mlp_out", m, {d});
        be.add(m, a, m, n * d);
        be.add(m, x, x, n * d);
      } else {
        be.add(x, a, x, n * d);
        emit(pass, b + "hook_resid_mid", x, {d});
        be.layer_norm(x, n, d, L.ln2.weight, L.ln2.bias, eps, h);
        emit(pass, b + "ln2.hook_normalized", h, {d});
        ungated_mlp(pass, b, L.up, L.down, h, hidden, m, x);
      }
      emit(pass, b + "hook_resid_post", x, {d});
      if (i + 1 < c.num_hidden_layers) emit(pass, "hidden_states." + std::to_string(i + 1), x, {d});
    }

    be.layer_norm(x, n, d, final_norm_.weight, final_norm_.bias, eps, h);
    emit(pass, "ln_final.hook_normalized", h, {d});
    emit(pass, "hidden_states." + std::to_string(c.num_hidden_layers), h, {d});
    return h;
  }

  const ops::Linear& lm_head() const override { return lm_head_; }

 private:
  struct Norm {
    const void *weight, *bias;
  };
  struct Layer {
    Norm ln1, ln2;
    ops::Linear qkv, dense, up, down;
  };
  Norm norm(const std::string& name, int64_t d) {
    return Norm{weight(name + ".weight", {d}), weight(name + ".bias", {d})};
  }
  ops::Linear linear(const std::string& name, int64_t out, int64_t in, bool bias) {
    return ops::Linear{weight(name + ".weight", {out, in}), bias ? weight(name + ".bias", {out}) : nullptr, in, out};
  }

  const bool parallel_;
  const void* embed_in_;
  std::vector<Layer> layers_;
  Norm final_norm_;
  ops::Linear lm_head_;
  ops::RotaryTable rotary_;
};

std::unique_ptr<Model> make_gpt_neox_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<GptNeoxModel>(source, std::move(config), load);
}

}  // namespace

const Architecture& gpt_neox_architecture() {
  static const Architecture row{"gpt_neox", parse_gpt_neox_config, make_gpt_neox_model, ArchitectureTraits{}};
  return row;
}

}  // namespace actcap
