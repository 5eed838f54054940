// GPT-2: learned positions, pre-LayerNorm, fused q/k/v projection (Conv1D: weights stored [in, out]),
// gelu_new MLP, lm_head tied to the token embedding. Weight names with or without the "transformer." prefix.
#include <cmath>

#include "core/dtype.h"
#include "models/config_reader.h"
#include "models/registry.h"

namespace actcap {
namespace {

struct Gpt2Config : FamilyConfig {
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
};

void parse_gpt2_config(const ConfigReader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("n_embd");
  m.num_hidden_layers = c.get<int64_t>("n_layer");
  m.num_attention_heads = c.get<int64_t>("n_head");
  m.num_key_value_heads = m.num_attention_heads;
  if (m.num_attention_heads > 0) m.head_dim = m.hidden_size / m.num_attention_heads;
  m.intermediate_size =
      c.has("n_inner") ? c.get<int64_t>("n_inner") : 4 * std::clamp<int64_t>(m.hidden_size, 0, kMaxConfigSize);
  m.max_position_embeddings = c.get<int64_t>("n_positions");
  m.norm_eps = c.get<double>("layer_norm_epsilon", 1e-5);
  m.activation = parse_activation(c.get<std::string>("activation_function", "gelu_new"), c.origin());
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", true);
  auto family = std::make_shared<Gpt2Config>();
  family->scale_attn_weights = c.get<bool>("scale_attn_weights", true);
  family->scale_attn_by_inverse_layer_idx = c.get<bool>("scale_attn_by_inverse_layer_idx", false);
  m.family = std::move(family);

  const std::string& origin = c.origin();
  check_sizes(origin, {{"n_embd", m.hidden_size},
                       {"n_layer", m.num_hidden_layers},
                       {"n_head", m.num_attention_heads},
                       {"n_inner", m.intermediate_size},
                       {"n_positions", m.max_position_embeddings}});
  if (m.hidden_size % m.num_attention_heads != 0)
    fail("{}: \"n_embd\" ({}) is not divisible by \"n_head\" ({})", origin, m.hidden_size, m.num_attention_heads);
  if (!std::isfinite(m.norm_eps) || m.norm_eps < 0)
    fail("{}: \"layer_norm_epsilon\" must be a non-negative number, got {}", origin, m.norm_eps);
}


enum Slot { RESIDUAL, POSITIONS, NORMED, QKV, QUERY, MIXED, SUBLAYER_OUT, MLP_HIDDEN };

class Gpt2Model : public Model {
 public:
  Gpt2Model(const ModelSource& source, ModelConfig config, const LoadOptions& load)
      : Model(source, std::move(config), load) {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
    const std::string prefix = has_weight("transformer.wte.weight") || !has_weight("wte.weight") ? "transformer." : "";
    wte_ = weight(prefix + "wte.weight", {V, d});
    wpe_ = weight(prefix + "wpe.weight", {c.max_position_embeddings, d});
    check_layer_count(prefix + "h.", "ln_1.weight", "n_layer");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = prefix + "h." + std::to_string(i) + ".";
      Layer L;
      L.ln_1_weight = weight(p + "ln_1.weight", {d});
      L.ln_1_bias = weight(p + "ln_1.bias", {d});
      L.c_attn = conv1d(p + "attn.c_attn", d, 3 * d);
      L.attn_c_proj = conv1d(p + "attn.c_proj", d, d);
      L.ln_2_weight = weight(p + "ln_2.weight", {d});
      L.ln_2_bias = weight(p + "ln_2.bias", {d});
      L.c_fc = conv1d(p + "mlp.c_fc", d, I);
      L.mlp_c_proj = conv1d(p + "mlp.c_proj", I, d);
      layers_.push_back(L);
    }
    ln_f_weight_ = weight(prefix + "ln_f.weight", {d});
    ln_f_bias_ = weight(prefix + "ln_f.bias", {d});
    lm_head_ = ops::Linear{c.tie_word_embeddings ? wte_ : weight("lm_head.weight", {V, d}), nullptr, d, V, false};
  }

  const ModelConfig& config() const override { return config_; }
  int64_t max_positions() const override { return config_.max_position_embeddings; }

  std::vector<std::string> site_names() const override {
    return layered_site_names({"hook_embed", "hook_pos_embed"},
                              {"hook_resid_pre", "ln1.hook_normalized", "attn.hook_pattern", "attn.hook_z",
                               "hook_attn_out", "hook_resid_mid", "ln2.hook_normalized", "mlp.hook_pre",
                               "mlp.hook_post", "hook_mlp_out", "hook_resid_post"},
                              true);
  }

 protected:
  const void* run(Pass& pass) override {
    const ModelConfig& c = config_;
    const Gpt2Config& family = c.family_as<Gpt2Config>();
    const int64_t n = pass.rows(), d = c.hidden_size, H = c.num_attention_heads, hd = c.head_dim;
    const int64_t I = c.intermediate_size;
    const float eps = float(c.norm_eps);
    ops::Backend& be = *backend_;

    void *x = scratch(RESIDUAL, n * d), *pos = scratch(POSITIONS, n * d), *h = scratch(NORMED, n * d);
    void *qkv = scratch(QKV, n * 3 * d), *q = scratch(QUERY, n * d), *z = scratch(MIXED, n * d);
    void *a = scratch(SUBLAYER_OUT, n * d), *fc = scratch(MLP_HIDDEN, n * I);
    be.embed(wte_, d, x);
    be.embed_positions(wpe_, d, 0, pos);
    emit(pass, "hook_embed", x, {d});
    emit(pass, "hook_pos_embed", pos, {d});
    be.add(x, pos, x, n * d);
    emit(pass, "hidden_states.0", x, {d});

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const Layer& L = layers_[size_t(i)];
      const std::string b = "blocks." + std::to_string(i) + ".";
      emit(pass, b + "hook_resid_pre", x, {d});
      be.layer_norm(x, n, d, L.ln_1_weight, L.ln_1_bias, eps, h);
      emit(pass, b + "ln1.hook_normalized", h, {d});

      be.linear(L.c_attn, h, n, qkv);
      be.copy_rows(q, d, qkv, 3 * d, d, n);
      // HF divides the scores twice: by sqrt(head_dim) held in a tensor of the dtype, then by layer + 1.
      ops::AttentionShape shape{H, H, hd, 1.0f, 0};
      if (family.scale_attn_weights) shape.divisors[0] = round_to(be.dtype(), float(std::sqrt(double(hd))));  // torch.full([], ., dtype)
      if (family.scale_attn_by_inverse_layer_idx) shape.divisors[1] = float(i + 1);
      attend(pass, int(i), b, shape, q, at(qkv, d), at(qkv, 2 * d), 3 * d, z);

      add_projection(pass, L.attn_c_proj, z, a, x, b + "hook_attn_out");
      emit(pass, b + "hook_resid_mid", x, {d});
      be.layer_norm(x, n, d, L.ln_2_weight, L.ln_2_bias, eps, h);
      emit(pass, b + "ln2.hook_normalized", h, {d});

      ungated_mlp(pass, b, L.c_fc, L.mlp_c_proj, h, fc, a, x);
      emit(pass, b + "hook_resid_post", x, {d});
      if (i + 1 < c.num_hidden_layers) emit(pass, "hidden_states." + std::to_string(i + 1), x, {d});
    }

    be.layer_norm(x, n, d, ln_f_weight_, ln_f_bias_, eps, h);
    emit(pass, "ln_final.hook_normalized", h, {d});
    emit(pass, "hidden_states." + std::to_string(c.num_hidden_layers), h, {d});
    return h;
  }

  const ops::Linear& lm_head() const override { return lm_head_; }

 private:
  struct Layer {
    const void *ln_1_weight, *ln_1_bias, *ln_2_weight, *ln_2_bias;
    ops::Linear c_attn, attn_c_proj, c_fc, mlp_c_proj;
  };
  ops::Linear conv1d(const std::string& name, int64_t in, int64_t out) {
    return ops::Linear{weight(name + ".weight", {in, out}), weight(name + ".bias", {out}), in, out, true};
  }

  const void *wte_, *wpe_, *ln_f_weight_, *ln_f_bias_;
  std::vector<Layer> layers_;
  ops::Linear lm_head_;
};

std::unique_ptr<Model> make_gpt2_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<Gpt2Model>(source, std::move(config), load);
}

}  // namespace

const Architecture& gpt2_architecture() {
  static const Architecture row{"gpt2", parse_gpt2_config, make_gpt2_model, ArchitectureTraits{}};
  return row;
}

}  // namespace actcap
