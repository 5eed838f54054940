#include "models/moe_decoder.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "models/llama_family.h"
#include "models/rope_frequencies.h"

namespace actcap {
namespace {

// Far above any released model (Qwen3-235B and DeepSeek-V3 route over 128 and 256); exact as bf16 integers up to
// 256 (hook_expert_indices passes through the compute dtype).
constexpr int64_t kMaxExperts = 65536;

enum Slot {
  RESIDUAL, NORMED, QUERY, KEY, VALUE, MIXED, SUBLAYER_OUT, GATE, UP, ACTIVATED,
  ROUTER_LOGITS, EXPERT_INDICES, EXPERT_WEIGHTS, EXPERT_ROWS, EXPERT_OUT
};

}  // namespace

MoeConfig parse_moe_decoder(const ConfigReader& c, ModelConfig& m, const MoeKeys& keys) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.intermediate_size = c.get<int64_t>("intermediate_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = c.get<int64_t>("num_key_value_heads", keys.default_kv_heads);
  if (m.num_attention_heads > 0) m.head_dim = c.get<int64_t>("head_dim", m.hidden_size / m.num_attention_heads);
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings", 0);
  m.norm_eps = c.get<double>("rms_norm_eps", keys.default_norm_eps);
  m.activation = parse_activation(c.get<std::string>("hidden_act", "silu"), c.origin());
  m.rope = parse_rope(c);
  if (!c.has("rope_theta") && !c.has("rope_parameters")) m.rope.theta = keys.default_rope_theta;
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  m.sliding_window = parse_sliding_window(c);
  check_rotary_decoder(m, c.origin(), "rms_norm_eps");

  MoeConfig moe;
  moe.experts = c.get<int64_t>(keys.experts, keys.default_experts);
  moe.experts_per_token = c.get<int64_t>("num_experts_per_tok", keys.default_experts_per_token);
  moe.expert_intermediate_size = c.get<int64_t>(keys.expert_intermediate_size, keys.default_expert_intermediate_size);
  if (moe.experts < 0 || moe.experts > kMaxExperts)
    fail("{}: \"{}\" must be between 0 and {}, got {}", c.origin(), keys.experts, kMaxExperts, moe.experts);
  if (moe.experts > 0 && (moe.experts_per_token < 1 || moe.experts_per_token > moe.experts))
    fail("{}: \"num_experts_per_tok\" must be between 1 and \"{}\" ({}), got {}", c.origin(), keys.experts,
         moe.experts, moe.experts_per_token);
  check_sizes(c.origin(), {{keys.expert_intermediate_size, moe.expert_intermediate_size}});
  return moe;
}

bool MoeConfig::sparse_at(int64_t layer) const {
  return experts > 0 && (layer + 1) % sparse_step == 0 &&
         std::find(dense_layers.begin(), dense_layers.end(), layer) == dense_layers.end();
}

MoeDecoderModel::MoeDecoderModel(const ModelSource& source, ModelConfig config, const LoadOptions& load,
                                 MoeLayout layout)
    : Model(source, std::move(config), load),
      layout_(std::move(layout)),
      one_row_gemms_(load.backend.deterministic || load.backend.device.type == ops::Device::Type::Cpu) {
  const ModelConfig& c = config_;
  const MoeConfig& moe = c.family_as<MoeConfig>();
  const int64_t d = c.hidden_size, V = c.vocab_size, hd = c.head_dim;
  const int64_t qdim = c.num_attention_heads * hd, kvdim = c.num_key_value_heads * hd;
  embed_tokens_ = weight("model.embed_tokens.weight", {V, d});
  check_layer_count("model.layers.", "input_layernorm.weight", "num_hidden_layers");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer L;
    L.input_norm = weight(p + "input_layernorm.weight", {d});
    L.q = linear(p + "self_attn.q_proj", qdim, d);
    L.k = linear(p + "self_attn.k_proj", kvdim, d);
    L.v = linear(p + "self_attn.v_proj", kvdim, d);
    L.o = linear(p + "self_attn.o_proj", d, qdim);
    if (layout_.qk_norm) {
      L.q_norm = weight(p + "self_attn.q_norm.weight", {hd});
      L.k_norm = weight(p + "self_attn.k_norm.weight", {hd});
    }
    L.post_attention_norm = weight(p + "post_attention_layernorm.weight", {d});
    if (moe.sparse_at(i)) {
      L.router = linear(p + layout_.block + "gate", moe.experts, d);
      L.experts = load_experts(p, d);
    } else {
      L.gate = linear(p + "mlp.gate_proj", c.intermediate_size, d);
      L.up = linear(p + "mlp.up_proj", c.intermediate_size, d);
      L.down = linear(p + "mlp.down_proj", d, c.intermediate_size);
    }
    layers_.push_back(std::move(L));
  }
  norm_ = weight("model.norm.weight", {d});
  const void* head = c.tie_word_embeddings ? embed_tokens_ : weight("lm_head.weight", {V, d});
  lm_head_ = ops::Linear{head, nullptr, d, V, false};
  std::vector<float> inv_freq(size_t(hd / 2));
  rope_inverse_frequencies(c.rope, hd, inv_freq.data());
  inv_freq_ = backend_->f32_constant(inv_freq);
}

ops::Linear MoeDecoderModel::linear(const std::string& name, int64_t out, int64_t in) {
  return ops::Linear{weight(name + ".weight", {out, in}), nullptr, in, out, false};
}

std::vector<MoeDecoderModel::Expert> MoeDecoderModel::load_experts(const std::string& layer, int64_t hidden) {
  const MoeConfig& moe = config_.family_as<MoeConfig>();
  const int64_t I = moe.expert_intermediate_size;
  std::vector<Expert> experts;
  for (int64_t e = 0; e < moe.experts; ++e) {
    const std::string p = layer + layout_.block + "experts." + std::to_string(e) + ".";
    experts.push_back(Expert{linear(p + layout_.gate, I, hidden), linear(p + layout_.up, I, hidden),
                             linear(p + layout_.down, hidden, I)});
  }
  return experts;
}

std::vector<std::string> MoeDecoderModel::site_names() const {
  const MoeConfig& moe = config_.family_as<MoeConfig>();
  std::vector<std::string> sites = {"hook_embed", "hidden_states.0"};
  const int64_t layers = config_.num_hidden_layers;
  for (int64_t i = 0; i < layers; ++i) {
    std::vector<std::string> block = {"hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k",
                                      "attn.hook_v", "attn.hook_pattern", "attn.hook_z", "hook_attn_out",
                                      "hook_resid_mid", "ln2.hook_normalized"};
    if (moe.sparse_at(i))
      block.insert(block.end(), {"mlp.hook_router_logits", "mlp.hook_expert_indices", "mlp.hook_expert_weights"});
    else
      block.insert(block.end(), {"mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post"});
    block.insert(block.end(), {"hook_mlp_out", "hook_resid_post"});
    for (const std::string& site : block) sites.push_back("blocks." + std::to_string(i) + "." + site);
    if (i + 1 < layers) sites.push_back("hidden_states." + std::to_string(i + 1));
  }
  sites.push_back("ln_final.hook_normalized");
  sites.push_back("hidden_states." + std::to_string(layers));
  sites.push_back("logits");
  return sites;
}

const void* MoeDecoderModel::run(Pass& pass) {
  const ModelConfig& c = config_;
  const int64_t n = pass.rows(), d = c.hidden_size;
  const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim;
  const int64_t qdim = H * hd, kvdim = Hkv * hd;
  const float eps = float(c.norm_eps);
  ops::Backend& be = *backend_;

  void *x = scratch(RESIDUAL, n * d), *h = scratch(NORMED, n * d), *q = scratch(QUERY, n * qdim);
  void *k = scratch(KEY, n * kvdim), *v = scratch(VALUE, n * kvdim), *z = scratch(MIXED, n * qdim);
  void* a = scratch(SUBLAYER_OUT, n * d);
  be.embed(embed_tokens_, d, x);
  emit(pass, "hook_embed", x, {d});
  emit(pass, "hidden_states.0", x, {d});

  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const Layer& L = layers_[size_t(i)];
    const std::string b = "blocks." + std::to_string(i) + ".";
    emit(pass, b + "hook_resid_pre", x, {d});
    be.rms_norm(x, n, d, L.input_norm, eps, h);
    emit(pass, b + "ln1.hook_normalized", h, {d});

    const ops::LinearOutput qkv[] = {{&L.q, q}, {&L.k, k}, {&L.v, v}};
    be.linears(h, n, qkv);
    if (layout_.qk_norm) {
      be.rms_norm(q, n * H, hd, L.q_norm, eps, q);
      be.rms_norm(k, n * Hkv, hd, L.k_norm, eps, k);
      emit(pass, b + "attn.hook_q", q, {H, hd});
      emit(pass, b + "attn.hook_k", k, {Hkv, hd});
    } else {
      emit(pass, b + "attn.hook_q", q, {qdim});
      emit(pass, b + "attn.hook_k", k, {kvdim});
    }
    emit(pass, b + "attn.hook_v", v, {kvdim});
    be.rotary(q, H, hd, inv_freq_);
    be.rotary(k, Hkv, hd, inv_freq_);

    const ops::AttentionShape shape{H, Hkv, hd, float(1.0 / std::sqrt(double(hd))), c.sliding_window_at(i)};
    attend(pass, int(i), b, shape, q, k, v, kvdim, z);

    add_projection(pass, L.o, z, a, x, b + "hook_attn_out");
    emit(pass, b + "hook_resid_mid", x, {d});
    be.rms_norm(x, n, d, L.post_attention_norm, eps, h);
    emit(pass, b + "ln2.hook_normalized", h, {d});

    if (L.experts.empty())
      dense_mlp(pass, L, b, h, a);
    else
      sparse_mlp(pass, L, b, h, a);
    emit(pass, b + "hook_mlp_out", a, {d});
    be.add(x, a, x, n * d);
    emit(pass, b + "hook_resid_post", x, {d});
    if (i + 1 < c.num_hidden_layers) emit(pass, "hidden_states." + std::to_string(i + 1), x, {d});
  }

  be.rms_norm(x, n, d, norm_, eps, h);
  emit(pass, "ln_final.hook_normalized", h, {d});
  emit(pass, "hidden_states." + std::to_string(c.num_hidden_layers), h, {d});
  return h;
}

void MoeDecoderModel::dense_mlp(const Pass& pass, const Layer& L, const std::string& b, const void* h, void* out) {
  const int64_t n = pass.rows(), I = config_.intermediate_size;
  ops::Backend& be = *backend_;
  void *gate = scratch(GATE, n * I), *up = scratch(UP, n * I), *post = scratch(ACTIVATED, n * I);
  const ops::LinearOutput gate_up[] = {{&L.gate, gate}, {&L.up, up}};
  be.linears(h, n, gate_up);
  emit(pass, b + "mlp.hook_pre", gate, {I});
  emit(pass, b + "mlp.hook_pre_linear", up, {I});
  be.gated_activate(config_.activation, gate, up, post, n * I);
  emit(pass, b + "mlp.hook_post", post, {I});
  be.linear(L.down, post, n, out);
}

MoeDecoderModel::Routing MoeDecoderModel::route(const std::vector<float>& logits, int64_t rows) const {
  const MoeConfig& moe = config_.family_as<MoeConfig>();
  const int64_t E = moe.experts, K = moe.experts_per_token;
  const DType dtype = backend_->dtype();
  Routing routing;
  routing.experts.resize(size_t(rows * K));
  routing.weights.resize(size_t(rows * K));
  std::vector<float> p(static_cast<size_t>(E));
  std::vector<int32_t> order(static_cast<size_t>(E));
  for (int64_t r = 0; r < rows; ++r) {
    // softmax(logits, dtype=float32): max-subtracted exponentials over their sum
    const float* l = logits.data() + r * E;
    const float max = *std::max_element(l, l + E);
    float sum = 0.0f;
    for (int64_t e = 0; e < E; ++e) sum += p[size_t(e)] = std::exp(l[e] - max);
    for (float& value : p) value /= sum;
    // topk: largest first; equal probabilities keep the lower expert index first
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return p[size_t(x)] > p[size_t(y)]; });
    float chosen = 0.0f;
    for (int64_t j = 0; j < K; ++j) chosen += p[size_t(order[size_t(j)])];
    for (int64_t j = 0; j < K; ++j) {
      const float w = p[size_t(order[size_t(j)])];
      routing.experts[size_t(r * K + j)] = order[size_t(j)];
      routing.weights[size_t(r * K + j)] = round_to(dtype, moe.normalize_top_k ? w / chosen : w);
    }
  }
  return routing;
}

void MoeDecoderModel::sparse_mlp(const Pass& pass, const Layer& L, const std::string& b, const void* h, void* out) {
  const MoeConfig& moe = config_.family_as<MoeConfig>();
  const int64_t n = pass.rows(), d = config_.hidden_size, E = moe.experts, K = moe.experts_per_token;
  const int64_t I = moe.expert_intermediate_size;
  ops::Backend& be = *backend_;

  void* logits = scratch(ROUTER_LOGITS, n * E);
  be.linear(L.router, h, n, logits);
  emit(pass, b + "mlp.hook_router_logits", logits, {E});
  const Routing routing = route(be.to_host(logits, n * E), n);
  // The choices are captured through the backend, so that they reach the sink in order with the other sites.
  if (pass.wants(b + "mlp.hook_expert_indices")) {
    const std::vector<float> indices(routing.experts.begin(), routing.experts.end());
    void* site = scratch(EXPERT_INDICES, n * K);
    be.upload(indices.data(), n * K, site);
    emit(pass, b + "mlp.hook_expert_indices", site, {K});
  }
  if (pass.wants(b + "mlp.hook_expert_weights")) {
    void* site = scratch(EXPERT_WEIGHTS, n * K);
    be.upload(routing.weights.data(), n * K, site);
    emit(pass, b + "mlp.hook_expert_weights", site, {K});
  }

  // Each token's rows per expert, in token order.
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(E));
  std::vector<std::vector<float>> weights(static_cast<size_t>(E));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < K; ++j) {
      const size_t e = size_t(routing.experts[size_t(r * K + j)]);
      rows[e].push_back(int32_t(r));
      weights[e].push_back(routing.weights[size_t(r * K + j)]);
    }
  const std::vector<float> zeros(size_t(n * d), 0.0f);
  be.upload(zeros.data(), n * d, out);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t m = int64_t(rows[size_t(e)].size());
    if (m == 0) continue;  // only the experts some token chose are computed
    const Expert& expert = L.experts[size_t(e)];
    void *in = scratch(EXPERT_ROWS, m * d), *gate = scratch(GATE, m * I), *up = scratch(UP, m * I);
    void *post = scratch(ACTIVATED, m * I), *expert_out = scratch(EXPERT_OUT, m * d);
    be.gather_rows(h, d, rows[size_t(e)], in);
    // Which rows share an expert depends on the whole batch. Backends that give a sequence the same bits in any
    // batch (CPU, CUDA --deterministic) compute rows that are not the batch's one at a time, but an expert's rows
    // would count as the batch's when every token chose it: one row per call keeps that case like the others.
    const int64_t step = one_row_gemms_ ? 1 : m;
    for (int64_t r = 0; r < m; r += step) {
      be.linear(expert.gate, at(in, r * d), step, at(gate, r * I));
      be.linear(expert.up, at(in, r * d), step, at(up, r * I));
    }
    be.gated_activate(config_.activation, gate, up, post, m * I);
    for (int64_t r = 0; r < m; r += step) be.linear(expert.down, at(post, r * I), step, at(expert_out, r * d));
    be.scatter_add_rows(expert_out, d, rows[size_t(e)], weights[size_t(e)], out);
  }
}

}  // namespace actcap
