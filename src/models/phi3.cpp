// Phi-3: the Llama pre-norm decoder with fused projections, qkv_proj ([q; k; v] row blocks) and gate_up_proj
// (gate rows first), partial rotary (partial_rotary_factor), LongRoPE, and a sliding window on every layer when
// sliding_window is set.
#include <algorithm>
#include <cmath>

#include "models/config_reader.h"
#include "models/llama_family.h"
#include "models/registry.h"
#include "models/rope_frequencies.h"

namespace actcap {
namespace {

// The per-frequency divisors of a longrope table: numbers, one per rotated pair of dims.
std::vector<double> longrope_factors(const ConfigReader& rope, const char* key, int64_t pairs) {
  if (!rope.has(key)) fail("{}: rope parameters lack \"{}\"", rope.origin(), key);
  const nlohmann::json& list = rope.at(key);
  if (!list.is_array() || int64_t(list.size()) != pairs || !std::all_of(list.begin(), list.end(), [](const auto& v) {
        return v.is_number() && std::isfinite(v.template get<double>()) && v.template get<double>() > 0;
      }))
    fail("{}: rope \"{}\" must list {} numbers (rotary dims / 2), got {}", rope.origin(), key, pairs, list.dump());
  return list.get<std::vector<double>>();
}

// LongRoPE (_compute_longrope_parameters): short/long factors, original_max_position_embeddings from the rope
// parameters or config.json, factor from the rope parameters or max_position_embeddings / original.
void parse_longrope(const ConfigReader& c, const ConfigReader& rope_keys, ModelConfig& m) {
  RopeConfig& rope = m.rope;
  rope.type = "longrope";
  rope.theta = rope_keys.get<double>("rope_theta", c.get<double>("rope_theta", 10000.0));
  if (!std::isfinite(rope.theta) || rope.theta <= 0)
    fail("{}: \"rope_theta\" must be positive, got {}", c.origin(), rope.theta);
  rope.original_max_position_embeddings = rope_keys.get<int64_t>(
      "original_max_position_embeddings", c.get<int64_t>("original_max_position_embeddings", 4096));
  if (rope.original_max_position_embeddings <= 0)
    fail("{}: \"original_max_position_embeddings\" must be positive, got {}", c.origin(),
         rope.original_max_position_embeddings);
  rope.factor = rope_keys.has("factor") ? rope_keys.get<double>("factor")
                                        : double(m.max_position_embeddings) /
                                              double(rope.original_max_position_embeddings);
  if (!std::isfinite(rope.factor) || rope.factor <= 0)
    fail("{}: rope \"factor\" must be positive, got {}", c.origin(), rope.factor);
  if (rope_keys.has("attention_factor")) {
    rope.attention_factor = rope_keys.get<double>("attention_factor");
    if (!std::isfinite(*rope.attention_factor) || *rope.attention_factor <= 0)
      fail("{}: rope \"attention_factor\" must be positive, got {}", c.origin(), *rope.attention_factor);
  }
  const int64_t pairs = rotary_dims(rope, m.head_dim) / 2;
  rope.short_factor = longrope_factors(rope_keys, "short_factor", pairs);
  rope.long_factor = longrope_factors(rope_keys, "long_factor", pairs);
}

// rope_parameters (transformers 5, partial_rotary_factor inside) or rope_theta + rope_scaling and a top-level
// partial_rotary_factor (transformers 4); Phi3Config renames rope type "su" and "yarn" to "longrope".
void parse_phi3_rope(const ConfigReader& c, ModelConfig& m) {
  const bool v5 = c.has("rope_parameters");
  const char* rope_key = v5 ? "rope_parameters" : c.has("rope_scaling") ? "rope_scaling" : nullptr;
  const nlohmann::json no_keys = nlohmann::json::object();
  const nlohmann::json& keys = rope_key && c.at(rope_key).is_object() ? c.at(rope_key) : no_keys;
  const ConfigReader rope_keys(keys, c.origin());
  const std::string type = rope_keys.get<std::string>("rope_type", rope_keys.get<std::string>("type", "default"));
  m.rope.partial_rotary_factor = v5 ? rope_keys.get<double>("partial_rotary_factor", 1.0)
                                     : c.get<double>("partial_rotary_factor", 1.0);
  check_partial_rotary(m.rope, m.head_dim, c.origin(), "partial_rotary_factor");
  if (type == "longrope" || type == "su" || type == "yarn") {
    parse_longrope(c, rope_keys, m);
  } else {
    const double partial = m.rope.partial_rotary_factor;
    m.rope = parse_rope(c);
    m.rope.partial_rotary_factor = partial;
  }
}

void parse_phi3_config(const ConfigReader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.intermediate_size = c.get<int64_t>("intermediate_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = c.get<int64_t>("num_key_value_heads", m.num_attention_heads);
  if (m.num_attention_heads > 0) m.head_dim = c.get<int64_t>("head_dim", m.hidden_size / m.num_attention_heads);
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings", 4096);
  m.norm_eps = c.get<double>("rms_norm_eps", 1e-5);
  m.activation = parse_activation(c.get<std::string>("hidden_act", "silu"), c.origin());
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  m.sliding_window = parse_sliding_window(c);  // Phi3Model windows every layer when it is set
  check_rotary_decoder(m, c.origin(), "rms_norm_eps");
  parse_phi3_rope(c, m);
}

enum Slot { RESIDUAL, NORMED, QKV, QUERY, KEY, VALUE, MIXED, SUBLAYER_OUT, GATE_UP, GATE, UP, ACTIVATED };

class Phi3Model : public Model {
 public:
  Phi3Model(const ModelSource& source, ModelConfig config, const LoadOptions& load)
      : Model(source, std::move(config), load) {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, V = c.vocab_size, hd = c.head_dim, I = c.intermediate_size;
    const int64_t qdim = c.num_attention_heads * hd, kvdim = c.num_key_value_heads * hd;
    embed_tokens_ = weight("model.embed_tokens.weight", {V, d});
    check_layer_count("model.layers.", "input_layernorm.weight", "num_hidden_layers");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      Layer L;
      L.input_norm = weight(p + "input_layernorm.weight", {d});
      L.qkv = linear(p + "self_attn.qkv_proj", qdim + 2 * kvdim, d);
      L.o = linear(p + "self_attn.o_proj", d, qdim);
      L.post_attention_norm = weight(p + "post_attention_layernorm.weight", {d});
      L.gate_up = linear(p + "mlp.gate_up_proj", 2 * I, d);
      L.down = linear(p + "mlp.down_proj", d, I);
      layers_.push_back(L);
    }
    norm_ = weight("model.norm.weight", {d});
    lm_head_ = ops::Linear{c.tie_word_embeddings ? embed_tokens_ : weight("lm_head.weight", {V, d}), nullptr, d, V};
    rotary_ = upload_rotary(*backend_, rotary_frequencies(c.rope, hd));
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
    const int64_t qdim = H * hd, kvdim = Hkv * hd, width = qdim + 2 * kvdim, I = c.intermediate_size;
    const float eps = float(c.norm_eps);
    ops::Backend& be = *backend_;

    void *x = scratch(RESIDUAL, n * d), *h = scratch(NORMED, n * d), *qkv = scratch(QKV, n * width);
    void *q = scratch(QUERY, n * qdim), *k = scratch(KEY, n * kvdim), *v = scratch(VALUE, n * kvdim);
    void *z = scratch(MIXED, n * qdim), *a = scratch(SUBLAYER_OUT, n * d), *gate_up = scratch(GATE_UP, n * 2 * I);
    void *gate = scratch(GATE, n * I), *up = scratch(UP, n * I), *post = scratch(ACTIVATED, n * I);
    be.embed(embed_tokens_, d, x);
    emit(pass, "hook_embed", x, {d});
    emit(pass, "hidden_states.0", x, {d});

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const Layer& L = layers_[size_t(i)];
      const std::string b = "blocks." + std::to_string(i) + ".";
      emit(pass, b + "hook_resid_pre", x, {d});
      be.rms_norm(x, n, d, L.input_norm, eps, h);
      emit(pass, b + "ln1.hook_normalized", h, {d});

      be.linear(L.qkv, h, n, qkv);
      be.copy_rows(q, qdim, qkv, width, qdim, n);
      be.copy_rows(k, kvdim, at(qkv, qdim), width, kvdim, n);
      be.copy_rows(v, kvdim, at(qkv, qdim + kvdim), width, kvdim, n);
      emit(pass, b + "attn.hook_q", q, {qdim});
      emit(pass, b + "attn.hook_k", k, {kvdim});
      emit(pass, b + "attn.hook_v", v, {kvdim});
      be.rotary(q, H, hd, rotary_);
      be.rotary(k, Hkv, hd, rotary_);

      const ops::AttentionShape shape{H, Hkv, hd, float(1.0 / std::sqrt(double(hd))), c.sliding_window_at(i)};
      attend(pass, int(i), b, shape, q, k, v, kvdim, z);

      add_projection(pass, L.o, z, a, x, b + "hook_attn_out");
      emit(pass, b + "hook_resid_mid", x, {d});
      be.rms_norm(x, n, d, L.post_attention_norm, eps, h);
      emit(pass, b + "ln2.hook_normalized", h, {d});

      // gate_up rows: gate [I], then up [I]
      be.linear(L.gate_up, h, n, gate_up);
      be.copy_rows(gate, I, gate_up, 2 * I, I, n);
      be.copy_rows(up, I, at(gate_up, I), 2 * I, I, n);
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

  const ops::Linear& lm_head() const override { return lm_head_; }

 private:
  struct Layer {
    const void *input_norm, *post_attention_norm;
    ops::Linear qkv, o, gate_up, down;
  };
  ops::Linear linear(const std::string& name, int64_t out, int64_t in) {
    return ops::Linear{weight(name + ".weight", {out, in}), nullptr, in, out};
  }

  const void* embed_tokens_;
  std::vector<Layer> layers_;
  const void* norm_;
  ops::Linear lm_head_;
  ops::RotaryTable rotary_;
};

std::unique_ptr<Model> make_phi3_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<Phi3Model>(source, std::move(config), load);
}

}  // namespace

const Architecture& phi3_architecture() {
  static const Architecture row{"phi3", parse_phi3_config, make_phi3_model, ArchitectureTraits{}};
  return row;
}

}  // namespace actcap
