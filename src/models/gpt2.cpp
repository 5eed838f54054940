// GPT-2: learned positions, pre-LayerNorm, fused q/k/v projection (Conv1D: weights stored [in, out]),
// gelu_new MLP, lm_head tied to the token embedding. Weight names with or without the "transformer." prefix.
#include <cmath>
#include <cstring>

#include "models/architectures.h"
#include "ops/ops.h"

namespace actcap {
namespace {

class Gpt2Model : public Model {
 public:
  Gpt2Model(const ModelSource& source, ModelConfig config) : Model(source, std::move(config)) {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
    prefix_ = has_weight("transformer.wte.weight") || !has_weight("wte.weight") ? "transformer." : "";
    wte_ = weight(prefix_ + "wte.weight", {V, d}).f32();
    wpe_ = weight(prefix_ + "wpe.weight", {c.max_position_embeddings, d}).f32();
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = prefix_ + "h." + std::to_string(i) + ".";
      Layer L;
      L.ln_1_weight = weight(p + "ln_1.weight", {d}).f32();
      L.ln_1_bias = weight(p + "ln_1.bias", {d}).f32();
      L.c_attn = conv1d(p + "attn.c_attn", d, 3 * d);
      L.attn_c_proj = conv1d(p + "attn.c_proj", d, d);
      L.ln_2_weight = weight(p + "ln_2.weight", {d}).f32();
      L.ln_2_bias = weight(p + "ln_2.bias", {d}).f32();
      L.c_fc = conv1d(p + "mlp.c_fc", d, I);
      L.mlp_c_proj = conv1d(p + "mlp.c_proj", I, d);
      layers_.push_back(L);
    }
    ln_f_weight_ = weight(prefix_ + "ln_f.weight", {d}).f32();
    ln_f_bias_ = weight(prefix_ + "ln_f.bias", {d}).f32();
    const float* head = c.tie_word_embeddings ? wte_ : weight("lm_head.weight", {V, d}).f32();
    lm_head_ = ops::Linear{head, nullptr, d, V, false};
  }

  const ModelConfig& config() const override { return config_; }
  int64_t max_positions() const override { return config_.max_position_embeddings; }

  std::vector<std::string> site_names() const override {
    std::vector<std::string> sites = {"hook_embed", "hook_pos_embed", "hidden_states.0"};
    const int64_t L = config_.num_hidden_layers;
    for (int64_t i = 0; i < L; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".";
      for (const char* s : {"hook_resid_pre", "ln1.hook_normalized", "attn.hook_pattern", "attn.hook_z",
                            "hook_attn_out", "hook_resid_mid", "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post",
                            "hook_mlp_out", "hook_resid_post"})
        sites.push_back(b + s);
      if (i + 1 < L) sites.push_back("hidden_states." + std::to_string(i + 1));
    }
    sites.push_back("ln_final.hook_normalized");
    sites.push_back("hidden_states." + std::to_string(L));
    sites.push_back("logits");
    return sites;
  }

 protected:
  Tensor run(std::span<const int32_t> tokens, KVCache& cache, const CaptureTarget& capture) override {
    const ModelConfig& c = config_;
    const int64_t n = int64_t(tokens.size()), p0 = cache.length, d = c.hidden_size, H = c.num_attention_heads;
    const int64_t hd = c.head_dim, I = c.intermediate_size, total = p0 + n;
    const float eps = float(c.norm_eps);

    Tensor x({n, d}), pos({n, d}), h({n, d}), qkv({n, 3 * d}), q({n, d}), z({n, d}), a({n, d});
    Tensor fc({n, I});
    for (int64_t r = 0; r < n; ++r) {
      std::memcpy(x.f32() + r * d, wte_ + tokens[r] * d, sizeof(float) * d);
      std::memcpy(pos.f32() + r * d, wpe_ + (p0 + r) * d, sizeof(float) * d);
    }
    capture.emit("hook_embed", p0, x.f32(), {n, d});
    capture.emit("hook_pos_embed", p0, pos.f32(), {n, d});
    ops::add(x.f32(), pos.f32(), x.f32(), n * d);
    capture.emit("hidden_states.0", p0, x.f32(), {n, d});

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const Layer& L = layers_[size_t(i)];
      const std::string b = "blocks." + std::to_string(i) + ".";
      capture.emit(b + "hook_resid_pre", p0, x.f32(), {n, d});
      ops::layer_norm(x.f32(), n, d, L.ln_1_weight, L.ln_1_bias, eps, h.f32());
      capture.emit(b + "ln1.hook_normalized", p0, h.f32(), {n, d});

      ops::linear(L.c_attn, h.f32(), n, qkv.f32());
      float* keys = cache.keys[size_t(i)].f32();
      float* values = cache.values[size_t(i)].f32();
      for (int64_t r = 0; r < n; ++r) {
        const float* row = qkv.f32() + r * 3 * d;
        std::memcpy(q.f32() + r * d, row, sizeof(float) * d);
        std::memcpy(keys + (p0 + r) * d, row + d, sizeof(float) * d);
        std::memcpy(values + (p0 + r) * d, row + 2 * d, sizeof(float) * d);
      }
      float scale = c.scale_attn_weights ? float(1.0 / std::sqrt(double(hd))) : 1.0f;
      if (c.scale_attn_by_inverse_layer_idx) scale /= float(i + 1);
      ops::AttentionShape shape{H, H, hd, scale, 0};
      const bool want_pattern = capture.wants(b + "attn.hook_pattern");
      Tensor pattern = want_pattern ? Tensor({n, H, total}) : Tensor();
      ops::attention(shape, q.f32(), n, p0, keys, values, z.f32(), want_pattern ? pattern.f32() : nullptr);
      if (want_pattern) capture.emit(b + "attn.hook_pattern", p0, pattern.f32(), {n, H, total});
      capture.emit(b + "attn.hook_z", p0, z.f32(), {n, d});

      ops::linear(L.attn_c_proj, z.f32(), n, a.f32());
      capture.emit(b + "hook_attn_out", p0, a.f32(), {n, d});
      ops::add(x.f32(), a.f32(), x.f32(), n * d);
      capture.emit(b + "hook_resid_mid", p0, x.f32(), {n, d});
      ops::layer_norm(x.f32(), n, d, L.ln_2_weight, L.ln_2_bias, eps, h.f32());
      capture.emit(b + "ln2.hook_normalized", p0, h.f32(), {n, d});

      ops::linear(L.c_fc, h.f32(), n, fc.f32());
      capture.emit(b + "mlp.hook_pre", p0, fc.f32(), {n, I});
      ops::activate(c.activation, fc.f32(), n * I);
      capture.emit(b + "mlp.hook_post", p0, fc.f32(), {n, I});
      ops::linear(L.mlp_c_proj, fc.f32(), n, a.f32());
      capture.emit(b + "hook_mlp_out", p0, a.f32(), {n, d});
      ops::add(x.f32(), a.f32(), x.f32(), n * d);
      capture.emit(b + "hook_resid_post", p0, x.f32(), {n, d});
      if (i + 1 < c.num_hidden_layers) capture.emit("hidden_states." + std::to_string(i + 1), p0, x.f32(), {n, d});
    }

    ops::layer_norm(x.f32(), n, d, ln_f_weight_, ln_f_bias_, eps, h.f32());
    capture.emit("ln_final.hook_normalized", p0, h.f32(), {n, d});
    capture.emit("hidden_states." + std::to_string(c.num_hidden_layers), p0, h.f32(), {n, d});
    return lm_head_logits(lm_head_, h.f32(), n, p0, capture);
  }

 private:
  struct Layer {
    const float *ln_1_weight, *ln_1_bias, *ln_2_weight, *ln_2_bias;
    ops::Linear c_attn, attn_c_proj, c_fc, mlp_c_proj;
  };
  ops::Linear conv1d(const std::string& name, int64_t in, int64_t out) {
    return ops::Linear{weight(name + ".weight", {in, out}).f32(), weight(name + ".bias", {out}).f32(), in, out, true};
  }

  std::string prefix_;
  const float *wte_, *wpe_, *ln_f_weight_, *ln_f_bias_;
  std::vector<Layer> layers_;
  ops::Linear lm_head_;
};

}  // namespace

std::unique_ptr<Model> make_gpt2(const ModelSource& source, ModelConfig config) {
  return std::make_unique<Gpt2Model>(source, std::move(config));
}

}  // namespace actcap
