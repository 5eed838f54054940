// OPT: learned positions offset by 2, LayerNorm before (or, in post-LN variants, after) each sub-block, relu MLP
// fc1/fc2, biases everywhere (enable_bias), optional project_in / project_out when word_embed_proj_dim differs
// from hidden_size. Sites follow HF's modules: ln1 is self_attn_layer_norm, ln2 the layer's final_layer_norm
// and resid_mid the input of that norm.
#include <cmath>
#include <cstring>

#include "models/architectures.h"
#include "ops/ops.h"

namespace actcap {
namespace {

constexpr int64_t POSITION_OFFSET = 2;  // OPTLearnedPositionalEmbedding

class OptModel : public Model {
 public:
  OptModel(const ModelSource& source, ModelConfig config) : Model(source, std::move(config)) {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, V = c.vocab_size, I = c.intermediate_size, wp = c.word_embed_proj_dim;
    const std::string p = "model.decoder.";
    embed_tokens_ = weight(p + "embed_tokens.weight", {V, wp}).f32();
    embed_positions_ = weight(p + "embed_positions.weight", {c.max_position_embeddings + POSITION_OFFSET, d}).f32();
    if (wp != d) {
      project_in_ = ops::Linear{weight(p + "project_in.weight", {d, wp}).f32(), nullptr, wp, d, false};
      project_out_ = ops::Linear{weight(p + "project_out.weight", {wp, d}).f32(), nullptr, d, wp, false};
    }
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string l = p + "layers." + std::to_string(i) + ".";
      Layer L;
      L.q = linear(l + "self_attn.q_proj", d, d);
      L.k = linear(l + "self_attn.k_proj", d, d);
      L.v = linear(l + "self_attn.v_proj", d, d);
      L.out = linear(l + "self_attn.out_proj", d, d);
      L.attn_norm_weight = weight(l + "self_attn_layer_norm.weight", {d}).f32();
      L.attn_norm_bias = weight(l + "self_attn_layer_norm.bias", {d}).f32();
      L.fc1 = linear(l + "fc1", I, d);
      L.fc2 = linear(l + "fc2", d, I);
      L.final_norm_weight = weight(l + "final_layer_norm.weight", {d}).f32();
      L.final_norm_bias = weight(l + "final_layer_norm.bias", {d}).f32();
      layers_.push_back(L);
    }
    if (c.final_layer_norm) {
      final_norm_weight_ = weight(p + "final_layer_norm.weight", {d}).f32();
      final_norm_bias_ = weight(p + "final_layer_norm.bias", {d}).f32();
    }
    const float* head = c.tie_word_embeddings ? embed_tokens_ : weight("lm_head.weight", {V, wp}).f32();
    lm_head_ = ops::Linear{head, nullptr, wp, V, false};
  }

  const ModelConfig& config() const override { return config_; }
  int64_t max_positions() const override { return config_.max_position_embeddings; }

  std::vector<std::string> site_names() const override {
    std::vector<std::string> sites = {"hook_embed", "hook_pos_embed", "hidden_states.0"};
    const int64_t L = config_.num_hidden_layers;
    const bool pre = config_.do_layer_norm_before;
    for (int64_t i = 0; i < L; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".";
      std::vector<const char*> names = {"hook_resid_pre"};
      if (pre) names.push_back("ln1.hook_normalized");
      names.insert(names.end(), {"attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern", "attn.hook_z",
                                 "hook_attn_out"});
      if (pre) {
        names.insert(names.end(), {"hook_resid_mid", "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post",
                                   "hook_mlp_out"});
      } else {
        names.insert(names.end(), {"ln1.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out",
                                   "hook_resid_mid", "ln2.hook_normalized"});
      }
      names.push_back("hook_resid_post");
      for (const char* s : names) sites.push_back(b + s);
      if (i + 1 < L) sites.push_back("hidden_states." + std::to_string(i + 1));
    }
    if (config_.final_layer_norm) sites.push_back("ln_final.hook_normalized");
    sites.push_back("hidden_states." + std::to_string(L));
    sites.push_back("logits");
    return sites;
  }

 protected:
  Tensor run(std::span<const int32_t> tokens, KVCache& cache, const CaptureTarget& capture) override {
    const ModelConfig& c = config_;
    const int64_t n = int64_t(tokens.size()), p0 = cache.length, d = c.hidden_size, H = c.num_attention_heads;
    const int64_t hd = c.head_dim, I = c.intermediate_size, wp = c.word_embed_proj_dim, total = p0 + n;
    const float eps = float(c.norm_eps);
    const bool pre = c.do_layer_norm_before;

    Tensor e({n, wp}), x({n, d}), pos({n, d}), h({n, d}), q({n, d}), z({n, d}), a({n, d}), fc({n, I});
    for (int64_t r = 0; r < n; ++r) {
      std::memcpy(e.f32() + r * wp, embed_tokens_ + tokens[r] * wp, sizeof(float) * wp);
      std::memcpy(pos.f32() + r * d, embed_positions_ + (p0 + r + POSITION_OFFSET) * d, sizeof(float) * d);
    }
    capture.emit("hook_embed", p0, e.f32(), {n, wp});
    if (wp != d) {
      ops::linear(project_in_, e.f32(), n, x.f32());
    } else {
      std::memcpy(x.f32(), e.f32(), sizeof(float) * n * d);
    }
    capture.emit("hook_pos_embed", p0, pos.f32(), {n, d});
    ops::add(x.f32(), pos.f32(), x.f32(), n * d);
    capture.emit("hidden_states.0", p0, x.f32(), {n, d});

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const Layer& L = layers_[size_t(i)];
      const std::string b = "blocks." + std::to_string(i) + ".";
      capture.emit(b + "hook_resid_pre", p0, x.f32(), {n, d});
      const float* attn_in = x.f32();
      if (pre) {
        ops::layer_norm(x.f32(), n, d, L.attn_norm_weight, L.attn_norm_bias, eps, h.f32());
        capture.emit(b + "ln1.hook_normalized", p0, h.f32(), {n, d});
        attn_in = h.f32();
      }
      float* keys = cache.keys[size_t(i)].f32();
      float* values = cache.values[size_t(i)].f32();
      ops::linear(L.q, attn_in, n, q.f32());
      ops::linear(L.k, attn_in, n, keys + p0 * d);
      ops::linear(L.v, attn_in, n, values + p0 * d);
      capture.emit(b + "attn.hook_q", p0, q.f32(), {n, d});
      capture.emit(b + "attn.hook_k", p0, keys + p0 * d, {n, d});
      capture.emit(b + "attn.hook_v", p0, values + p0 * d, {n, d});
      ops::AttentionShape shape{H, H, hd, float(1.0 / std::sqrt(double(hd))), 0};
      const bool want_pattern = capture.wants(b + "attn.hook_pattern");
      Tensor pattern = want_pattern ? Tensor({n, H, total}) : Tensor();
      ops::attention(shape, q.f32(), n, p0, keys, values, z.f32(), want_pattern ? pattern.f32() : nullptr);
      if (want_pattern) capture.emit(b + "attn.hook_pattern", p0, pattern.f32(), {n, H, total});
      capture.emit(b + "attn.hook_z", p0, z.f32(), {n, d});
      ops::linear(L.out, z.f32(), n, a.f32());
      capture.emit(b + "hook_attn_out", p0, a.f32(), {n, d});
      ops::add(x.f32(), a.f32(), x.f32(), n * d);

      const float* mlp_in = x.f32();
      if (pre) {
        capture.emit(b + "hook_resid_mid", p0, x.f32(), {n, d});
        ops::layer_norm(x.f32(), n, d, L.final_norm_weight, L.final_norm_bias, eps, h.f32());
        capture.emit(b + "ln2.hook_normalized", p0, h.f32(), {n, d});
        mlp_in = h.f32();
      } else {
        ops::layer_norm(x.f32(), n, d, L.attn_norm_weight, L.attn_norm_bias, eps, x.f32());
        capture.emit(b + "ln1.hook_normalized", p0, x.f32(), {n, d});
      }
      ops::linear(L.fc1, mlp_in, n, fc.f32());
      capture.emit(b + "mlp.hook_pre", p0, fc.f32(), {n, I});
      ops::activate(c.activation, fc.f32(), n * I);
      capture.emit(b + "mlp.hook_post", p0, fc.f32(), {n, I});
      ops::linear(L.fc2, fc.f32(), n, a.f32());
      capture.emit(b + "hook_mlp_out", p0, a.f32(), {n, d});
      ops::add(x.f32(), a.f32(), x.f32(), n * d);
      if (!pre) {
        capture.emit(b + "hook_resid_mid", p0, x.f32(), {n, d});
        ops::layer_norm(x.f32(), n, d, L.final_norm_weight, L.final_norm_bias, eps, x.f32());
        capture.emit(b + "ln2.hook_normalized", p0, x.f32(), {n, d});
      }
      capture.emit(b + "hook_resid_post", p0, x.f32(), {n, d});
      if (i + 1 < c.num_hidden_layers) capture.emit("hidden_states." + std::to_string(i + 1), p0, x.f32(), {n, d});
    }

    const float* last = x.f32();
    if (c.final_layer_norm) {
      ops::layer_norm(x.f32(), n, d, final_norm_weight_, final_norm_bias_, eps, h.f32());
      capture.emit("ln_final.hook_normalized", p0, h.f32(), {n, d});
      last = h.f32();
    }
    Tensor projected;
    if (wp != d) {
      projected = Tensor({n, wp});
      ops::linear(project_out_, last, n, projected.f32());
      last = projected.f32();
    }
    capture.emit("hidden_states." + std::to_string(c.num_hidden_layers), p0, last, {n, wp});
    return lm_head_logits(lm_head_, last, n, p0, capture);
  }

 private:
  struct Layer {
    ops::Linear q, k, v, out, fc1, fc2;
    const float *attn_norm_weight, *attn_norm_bias, *final_norm_weight, *final_norm_bias;
  };
  ops::Linear linear(const std::string& name, int64_t out, int64_t in) {
    const bool bias = config_.enable_bias;
    return ops::Linear{weight(name + ".weight", {out, in}).f32(), bias ? weight(name + ".bias", {out}).f32() : nullptr,
                       in, out, false};
  }

  const float *embed_tokens_, *embed_positions_;
  const float *final_norm_weight_ = nullptr, *final_norm_bias_ = nullptr;
  ops::Linear project_in_, project_out_, lm_head_;
  std::vector<Layer> layers_;
};

}  // namespace

std::unique_ptr<Model> make_opt(const ModelSource& source, ModelConfig config) {
  return std::make_unique<OptModel>(source, std::move(config));
}

}  // namespace actcap
