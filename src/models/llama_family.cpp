#include "models/llama_family.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace actcap {

LlamaFamilyModel::LlamaFamilyModel(const ModelSource& source, ModelConfig config, LlamaFamilyOptions options)
    : Model(source, std::move(config)), options_(options) {
  const ModelConfig& c = config_;
  const int64_t d = c.hidden_size, V = c.vocab_size, hd = c.head_dim;
  const int64_t qdim = c.num_attention_heads * hd, kvdim = c.num_key_value_heads * hd;
  embed_tokens_ = weight("model.embed_tokens.weight", {V, d}).f32();
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer L;
    L.input_norm = weight(p + "input_layernorm.weight", {d}).f32();
    L.q = linear(p + "self_attn.q_proj", qdim, d, options_.qkv_bias);
    L.k = linear(p + "self_attn.k_proj", kvdim, d, options_.qkv_bias);
    L.v = linear(p + "self_attn.v_proj", kvdim, d, options_.qkv_bias);
    L.o = linear(p + "self_attn.o_proj", d, qdim, options_.o_bias);
    if (options_.qk_norm) {
      L.q_norm = weight(p + "self_attn.q_norm.weight", {hd}).f32();
      L.k_norm = weight(p + "self_attn.k_norm.weight", {hd}).f32();
    }
    L.post_attention_norm = weight(p + "post_attention_layernorm.weight", {d}).f32();
    L.gate = linear(p + "mlp.gate_proj", c.intermediate_size, d, c.mlp_bias);
    L.up = linear(p + "mlp.up_proj", c.intermediate_size, d, c.mlp_bias);
    L.down = linear(p + "mlp.down_proj", d, c.intermediate_size, c.mlp_bias);
    layers_.push_back(L);
  }
  norm_ = weight("model.norm.weight", {d}).f32();
  lm_head_ = ops::Linear{c.tie_word_embeddings ? embed_tokens_ : weight("lm_head.weight", {V, d}).f32(), nullptr, d,
                         V, false};
  inv_freq_.resize(size_t(hd / 2));
  ops::rope_inverse_frequencies(c.rope, hd, inv_freq_.data());
}

ops::Linear LlamaFamilyModel::linear(const std::string& name, int64_t out, int64_t in, bool bias) {
  return ops::Linear{weight(name + ".weight", {out, in}).f32(), bias ? weight(name + ".bias", {out}).f32() : nullptr,
                     in, out, false};
}

std::vector<std::string> LlamaFamilyModel::site_names() const {
  std::vector<std::string> sites = {"hook_embed", "hidden_states.0"};
  const int64_t L = config_.num_hidden_layers;
  for (int64_t i = 0; i < L; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    for (const char* s : {"hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
                          "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid",
                          "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post",
                          "hook_mlp_out", "hook_resid_post"})
      sites.push_back(b + s);
    if (i + 1 < L) sites.push_back("hidden_states." + std::to_string(i + 1));
  }
  sites.push_back("ln_final.hook_normalized");
  sites.push_back("hidden_states." + std::to_string(L));
  sites.push_back("logits");
  return sites;
}

Tensor LlamaFamilyModel::run(std::span<const int32_t> tokens, KVCache& cache, const CaptureTarget& capture) {
  const ModelConfig& c = config_;
  const int64_t n = int64_t(tokens.size()), p0 = cache.length, d = c.hidden_size;
  const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim;
  const int64_t qdim = H * hd, kvdim = Hkv * hd, I = c.intermediate_size, total = p0 + n;

  Tensor x({n, d}), h({n, d}), q({n, qdim}), k({n, kvdim}), v({n, kvdim}), z({n, qdim}), a({n, d});
  Tensor gate({n, I}), up({n, I}), post({n, I});
  for (int64_t r = 0; r < n; ++r) std::memcpy(x.f32() + r * d, embed_tokens_ + tokens[r] * d, sizeof(float) * d);
  capture.emit("hook_embed", p0, x.f32(), {n, d});
  capture.emit("hidden_states.0", p0, x.f32(), {n, d});

  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const Layer& L = layers_[size_t(i)];
    const std::string b = "blocks." + std::to_string(i) + ".";
    capture.emit(b + "hook_resid_pre", p0, x.f32(), {n, d});
    ops::rms_norm(x.f32(), n, d, L.input_norm, float(c.norm_eps), h.f32());
    capture.emit(b + "ln1.hook_normalized", p0, h.f32(), {n, d});

    ops::linear(L.q, h.f32(), n, q.f32());
    ops::linear(L.k, h.f32(), n, k.f32());
    ops::linear(L.v, h.f32(), n, v.f32());
    if (options_.qk_norm) {
      ops::rms_norm(q.f32(), n * H, hd, L.q_norm, float(c.norm_eps), q.f32());
      ops::rms_norm(k.f32(), n * Hkv, hd, L.k_norm, float(c.norm_eps), k.f32());
      capture.emit(b + "attn.hook_q", p0, q.f32(), {n, H, hd});
      capture.emit(b + "attn.hook_k", p0, k.f32(), {n, Hkv, hd});
    } else {
      capture.emit(b + "attn.hook_q", p0, q.f32(), {n, qdim});
      capture.emit(b + "attn.hook_k", p0, k.f32(), {n, kvdim});
    }
    capture.emit(b + "attn.hook_v", p0, v.f32(), {n, kvdim});
    ops::apply_rotary(q.f32(), n, H, hd, p0, inv_freq_.data());
    ops::apply_rotary(k.f32(), n, Hkv, hd, p0, inv_freq_.data());
    std::memcpy(cache.keys[size_t(i)].f32() + p0 * kvdim, k.f32(), sizeof(float) * n * kvdim);
    std::memcpy(cache.values[size_t(i)].f32() + p0 * kvdim, v.f32(), sizeof(float) * n * kvdim);

    ops::AttentionShape shape{H, Hkv, hd, float(1.0 / std::sqrt(double(hd))), c.sliding_window[size_t(i)]};
    const bool want_pattern = capture.wants(b + "attn.hook_pattern");
    Tensor pattern = want_pattern ? Tensor({n, H, total}) : Tensor();
    ops::attention(shape, q.f32(), n, p0, cache.keys[size_t(i)].f32(), cache.values[size_t(i)].f32(), z.f32(),
                   want_pattern ? pattern.f32() : nullptr);
    if (want_pattern) capture.emit(b + "attn.hook_pattern", p0, pattern.f32(), {n, H, total});
    capture.emit(b + "attn.hook_z", p0, z.f32(), {n, qdim});

    ops::linear(L.o, z.f32(), n, a.f32());
    capture.emit(b + "hook_attn_out", p0, a.f32(), {n, d});
    ops::add(x.f32(), a.f32(), x.f32(), n * d);
    capture.emit(b + "hook_resid_mid", p0, x.f32(), {n, d});
    ops::rms_norm(x.f32(), n, d, L.post_attention_norm, float(c.norm_eps), h.f32());
    capture.emit(b + "ln2.hook_normalized", p0, h.f32(), {n, d});

    ops::linear(L.gate, h.f32(), n, gate.f32());
    capture.emit(b + "mlp.hook_pre", p0, gate.f32(), {n, I});
    ops::linear(L.up, h.f32(), n, up.f32());
    capture.emit(b + "mlp.hook_pre_linear", p0, up.f32(), {n, I});
    ops::gated_activate(c.activation, gate.f32(), up.f32(), post.f32(), n * I);
    capture.emit(b + "mlp.hook_post", p0, post.f32(), {n, I});
    ops::linear(L.down, post.f32(), n, a.f32());
    capture.emit(b + "hook_mlp_out", p0, a.f32(), {n, d});
    ops::add(x.f32(), a.f32(), x.f32(), n * d);
    capture.emit(b + "hook_resid_post", p0, x.f32(), {n, d});
    if (i + 1 < c.num_hidden_layers) capture.emit("hidden_states." + std::to_string(i + 1), p0, x.f32(), {n, d});
  }

  ops::rms_norm(x.f32(), n, d, norm_, float(c.norm_eps), h.f32());
  capture.emit("ln_final.hook_normalized", p0, h.f32(), {n, d});
  capture.emit("hidden_states." + std::to_string(c.num_hidden_layers), p0, h.f32(), {n, d});
  return lm_head_logits(lm_head_, h.f32(), n, p0, capture);
}

}  // namespace actcap
