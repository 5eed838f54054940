// OPT: learned positions offset by 2, LayerNorm before (or, in post-LN variants, after) each sub-block, relu MLP
// fc1/fc2, biases everywhere (enable_bias), optional project_in / project_out when word_embed_proj_dim differs
// from hidden_size. Sites follow HF's modules: ln1 is self_attn_layer_norm, ln2 the layer's final_layer_norm
// and resid_mid the input of that norm.
#include <cmath>

#include "models/config_reader.h"
#include "models/registry.h"

namespace actcap {
namespace {

struct OptConfig : FamilyConfig {
  bool do_layer_norm_before = true;
  bool final_layer_norm = true;     // false when HF builds no final norm (post-LN or _remove_final_layer_norm)
  int64_t word_embed_proj_dim = 0;  // != hidden_size: project_in / project_out
  bool enable_bias = true;
};

void parse_opt_config(const ConfigReader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = m.num_attention_heads;
  if (m.num_attention_heads > 0) m.head_dim = m.hidden_size / m.num_attention_heads;
  m.intermediate_size = c.get<int64_t>("ffn_dim");
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings");
  m.norm_eps = 1e-5;  // OPT's LayerNorms use torch's default
  m.activation = parse_activation(c.get<std::string>("activation_function", "relu"), c.origin());
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", true);
  auto family = std::make_shared<OptConfig>();
  family->do_layer_norm_before = c.get<bool>("do_layer_norm_before", true);
  family->final_layer_norm = family->do_layer_norm_before && !c.get<bool>("_remove_final_layer_norm", false);
  family->word_embed_proj_dim = c.get<int64_t>("word_embed_proj_dim", m.hidden_size);
  family->enable_bias = c.get<bool>("enable_bias", true);
  if (!c.get<bool>("layer_norm_elementwise_affine", true))
    fail("{}: layer_norm_elementwise_affine=false is not supported", c.origin());

  const std::string& origin = c.origin();
  check_sizes(origin, {{"hidden_size", m.hidden_size},
                       {"num_hidden_layers", m.num_hidden_layers},
                       {"num_attention_heads", m.num_attention_heads},
                       {"ffn_dim", m.intermediate_size},
                       {"word_embed_proj_dim", family->word_embed_proj_dim},
                       {"max_position_embeddings", m.max_position_embeddings}});
  if (m.hidden_size % m.num_attention_heads != 0)
    fail("{}: \"hidden_size\" ({}) is not divisible by \"num_attention_heads\" ({})", origin, m.hidden_size,
         m.num_attention_heads);
  m.family = std::move(family);
}

constexpr int64_t POSITION_OFFSET = 2;  // OPTLearnedPositionalEmbedding
enum Slot { EMBEDDED, RESIDUAL, POSITIONS, NORMED, QUERY, KEY, VALUE, MIXED, SUBLAYER_OUT, MLP_HIDDEN };

class OptModel : public Model {
 public:
  OptModel(const ModelSource& source, ModelConfig config, const LoadOptions& load)
      : Model(source, std::move(config), load), opt_(config_.family_as<OptConfig>()) {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, V = c.vocab_size, I = c.intermediate_size, wp = opt_.word_embed_proj_dim;
    const std::string p = "model.decoder.";
    embed_tokens_ = weight(p + "embed_tokens.weight", {V, wp});
    embed_positions_ = weight(p + "embed_positions.weight", {c.max_position_embeddings + POSITION_OFFSET, d});
    if (wp != d) {
      project_in_ = ops::Linear{weight(p + "project_in.weight", {d, wp}), nullptr, wp, d, false};
      project_out_ = ops::Linear{weight(p + "project_out.weight", {wp, d}), nullptr, d, wp, false};
    }
    check_layer_count(p + "layers.", "self_attn.q_proj.weight", "num_hidden_layers");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string l = p + "layers." + std::to_string(i) + ".";
      Layer L;
      L.q = linear(l + "self_attn.q_proj", d, d);
      L.k = linear(l + "self_attn.k_proj", d, d);
      L.v = linear(l + "self_attn.v_proj", d, d);
      L.out = linear(l + "self_attn.out_proj", d, d);
      L.attn_norm_weight = weight(l + "self_attn_layer_norm.weight", {d});
      L.attn_norm_bias = weight(l + "self_attn_layer_norm.bias", {d});
      L.fc1 = linear(l + "fc1", I, d);
      L.fc2 = linear(l + "fc2", d, I);
      L.final_norm_weight = weight(l + "final_layer_norm.weight", {d});
      L.final_norm_bias = weight(l + "final_layer_norm.bias", {d});
      layers_.push_back(L);
    }
    if (opt_.final_layer_norm) {
      final_norm_weight_ = weight(p + "final_layer_norm.weight", {d});
      final_norm_bias_ = weight(p + "final_layer_norm.bias", {d});
    }
    const void* head = c.tie_word_embeddings ? embed_tokens_ : weight("lm_head.weight", {V, wp});
    lm_head_ = ops::Linear{head, nullptr, wp, V, false};
  }

  const ModelConfig& config() const override { return config_; }
  int64_t max_positions() const override { return config_.max_position_embeddings; }

  std::vector<std::string> site_names() const override {
    std::vector<std::string> block = {"hook_resid_pre"};
    if (opt_.do_layer_norm_before) {
      block.insert(block.end(), {"ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
                                 "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid",
                                 "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out"});
    } else {
      block.insert(block.end(), {"attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern", "attn.hook_z",
                                 "hook_attn_out", "ln1.hook_normalized", "mlp.hook_pre", "mlp.hook_post",
                                 "hook_mlp_out", "hook_resid_mid", "ln2.hook_normalized"});
    }
    block.push_back("hook_resid_post");
    return layered_site_names({"hook_embed", "hook_pos_embed"}, block, opt_.final_layer_norm);
  }

 protected:
  const void* run(Pass& pass) override {
    const ModelConfig& c = config_;
    const int64_t n = pass.rows(), d = c.hidden_size, H = c.num_attention_heads;
    const int64_t hd = c.head_dim, I = c.intermediate_size, wp = opt_.word_embed_proj_dim;
    const float eps = float(c.norm_eps);
    const bool pre = opt_.do_layer_norm_before;
    ops::Backend& be = *backend_;

    void *e = scratch(EMBEDDED, n * wp), *x = scratch(RESIDUAL, n * d), *pos = scratch(POSITIONS, n * d);
    void *h = scratch(NORMED, n * d), *q = scratch(QUERY, n * d), *k = scratch(KEY, n * d);
    void *v = scratch(VALUE, n * d), *z = scratch(MIXED, n * d), *a = scratch(SUBLAYER_OUT, n * d);
    void* fc = scratch(MLP_HIDDEN, n * I);
    be.embed(embed_tokens_, wp, e);
    be.embed_positions(embed_positions_, d, POSITION_OFFSET, pos);
    emit(pass, "hook_embed", e, {wp});
    if (wp != d) {
      be.linear(project_in_, e, n, x);
    } else {
      be.copy_rows(x, d, e, d, d, n);
    }
    emit(pass, "hook_pos_embed", pos, {d});
    be.add(x, pos, x, n * d);
    emit(pass, "hidden_states.0", x, {d});

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const Layer& L = layers_[size_t(i)];
      const std::string b = "blocks." + std::to_string(i) + ".";
      emit(pass, b + "hook_resid_pre", x, {d});
      const void* attn_in = x;
      if (pre) {
        be.layer_norm(x, n, d, L.attn_norm_weight, L.attn_norm_bias, eps, h);
        emit(pass, b + "ln1.hook_normalized", h, {d});
        attn_in = h;
      }
      const ops::LinearOutput qkv[] = {{&L.q, q}, {&L.k, k}, {&L.v, v}};
      be.linears(attn_in, n, qkv);
      emit(pass, b + "attn.hook_q", q, {d});
      be.scale(q, float(1.0 / std::sqrt(double(hd))), n * d);  // HF scales q itself, before q @ k^T
      emit(pass, b + "attn.hook_k", k, {d});
      emit(pass, b + "attn.hook_v", v, {d});
      const ops::AttentionShape shape{H, H, hd, 1.0f, 0};
      attend(pass, int(i), b, shape, q, k, v, d, z);
      add_projection(pass, L.out, z, a, x, b + "hook_attn_out");

      const void* mlp_in = x;
      if (pre) {
        emit(pass, b + "hook_resid_mid", x, {d});
        be.layer_norm(x, n, d, L.final_norm_weight, L.final_norm_bias, eps, h);
        emit(pass, b + "ln2.hook_normalized", h, {d});
        mlp_in = h;
      } else {
        be.layer_norm(x, n, d, L.attn_norm_weight, L.attn_norm_bias, eps, x);
        emit(pass, b + "ln1.hook_normalized", x, {d});
      }
      ungated_mlp(pass, b, L.fc1, L.fc2, mlp_in, fc, a, x);
      if (!pre) {
        emit(pass, b + "hook_resid_mid", x, {d});
        be.layer_norm(x, n, d, L.final_norm_weight, L.final_norm_bias, eps, x);
        emit(pass, b + "ln2.hook_normalized", x, {d});
      }
      emit(pass, b + "hook_resid_post", x, {d});
      if (i + 1 < c.num_hidden_layers) emit(pass, "hidden_states." + std::to_string(i + 1), x, {d});
    }

    void* last = x;
    if (opt_.final_layer_norm) {
      be.layer_norm(x, n, d, final_norm_weight_, final_norm_bias_, eps, h);
      emit(pass, "ln_final.hook_normalized", h, {d});
      last = h;
    }
    if (wp != d) {
      be.linear(project_out_, last, n, e);
      last = e;
    }
    emit(pass, "hidden_states." + std::to_string(c.num_hidden_layers), last, {wp});
    return last;
  }

  const ops::Linear& lm_head() const override { return lm_head_; }

 private:
  struct Layer {
    ops::Linear q, k, v, out, fc1, fc2;
    const void *attn_norm_weight, *attn_norm_bias, *final_norm_weight, *final_norm_bias;
  };
  ops::Linear linear(const std::string& name, int64_t out, int64_t in) {
    const bool bias = opt_.enable_bias;
    return ops::Linear{weight(name + ".weight", {out, in}), bias ? weight(name + ".bias", {out}) : nullptr, in, out,
                       false};
  }

  const OptConfig& opt_;
  const void *embed_tokens_, *embed_positions_;
  const void *final_norm_weight_ = nullptr, *final_norm_bias_ = nullptr;
  ops::Linear project_in_, project_out_, lm_head_;
  std::vector<Layer> layers_;
};

std::unique_ptr<Model> make_opt_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<OptModel>(source, std::move(config), load);
}

}  // namespace

const Architecture& opt_architecture() {
  static const Architecture row{"opt", parse_opt_config, make_opt_model, ArchitectureTraits{}};
  return row;
}

}  // namespace actcap
