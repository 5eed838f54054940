"""OLMo 2 (model_type "olmo2") for torch_reference.py, formula for formula from HF 5.x modeling_olmo2.py.

What differs from the Llama family:
* no pre-norm: each sub-block's OUTPUT goes through an RMSNorm (post_attention_layernorm, post_feedforward_layernorm)
  before the residual add;
* q_norm / k_norm are RMSNorms over the whole q / k projection (heads * head_dim), before the head view and rotary;
* Olmo2RMSNorm multiplies its weight before casting back to the input dtype (equal to Llama's in fp32, which is
  all this oracle computes).

Sites: the Llama family's, without ln1/ln2 (there is no pre-norm), plus the post-norm outputs
`blocks.<i>.ln1_post.hook_normalized` (what the attention adds to the residual) and
`blocks.<i>.ln2_post.hook_normalized` (what the MLP adds), TransformerLens' names for Gemma-2's post-norms.
`hook_attn_out` / `hook_mlp_out` stay the sub-blocks' raw outputs (o_proj / down_proj), and `attn.hook_q` /
`attn.hook_k` are q_norm / k_norm's outputs, [tokens, heads * head_dim] as HF's modules return them.
"""
import torch

# The HF class save_pretrained writes into config.json's "architectures".
ARCH = {"olmo2": "Olmo2ForCausalLM"}


def configure(c, raw, rope):
    """Olmo2Config's fields and defaults (configuration_olmo2.py); head_dim is not a field of Olmo2Config, but
    the modeling code reads getattr(config, "head_dim", hidden // heads), so a config.json key counts."""
    g = raw.get
    c.hidden = g("hidden_size", 4096)
    c.layers = g("num_hidden_layers", 32)
    c.heads = g("num_attention_heads", 32)
    c.kv_heads = g("num_key_value_heads") or c.heads
    c.head_dim = g("head_dim") or c.hidden // c.heads
    c.inner = g("intermediate_size", 11008)
    c.act = g("hidden_act", "silu")
    c.eps = g("rms_norm_eps", 1e-5)
    c.tied = g("tie_word_embeddings", False)
    c.bias = g("attention_bias", False)
    c.rope = rope


def weight_shapes(c):
    """HF parameter names and shapes, in Olmo2ForCausalLM's named_parameters order."""
    d, hd, H, KV = c.hidden, c.head_dim, c.heads, c.kv_heads
    out = [("model.embed_tokens.weight", [c.vocab, d])]
    for i in range(c.layers):
        p = f"model.layers.{i}."
        for n, rows, cols in (("q_proj", H * hd, d), ("k_proj", KV * hd, d), ("v_proj", KV * hd, d),
                              ("o_proj", d, H * hd)):
            out += [(p + f"self_attn.{n}.weight", [rows, cols])]
            if c.bias:
                out += [(p + f"self_attn.{n}.bias", [rows])]
        out += [(p + "self_attn.q_norm.weight", [H * hd]), (p + "self_attn.k_norm.weight", [KV * hd])]
        out += [(p + "mlp.gate_proj.weight", [c.inner, d]), (p + "mlp.up_proj.weight", [c.inner, d]),
                (p + "mlp.down_proj.weight", [d, c.inner])]
        out += [(p + "post_attention_layernorm.weight", [d]), (p + "post_feedforward_layernorm.weight", [d])]
    out += [("model.norm.weight", [d])]
    if not c.tied:
        out += [("lm_head.weight", [c.vocab, d])]
    return out


def forward(model, ids, tr):
    """Olmo2ForCausalLM's eager forward on ids [1, T]; `tr` is torch_reference (its shared ops)."""
    c, w, s = model.cfg, model.w, {}
    B, T = ids.shape
    H, KV, hd = c.heads, c.kv_heads, c.head_dim
    x = tr.F.embedding(ids, w["model.embed_tokens.weight"])
    s["hook_embed"] = x
    hidden = [x]
    pos = torch.arange(T)[None, :]
    inv_freq = tr.inv_freq_for(c.rope, hd).to(c.buffer_dtype).float()
    freqs = (inv_freq[None, :, None].float() @ pos[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # attention_scaling is 1 for default and linear
    mask = tr.additive_mask(T)
    scaling = hd ** -0.5
    act = tr.act_fn(c.act)
    for i in range(c.layers):
        p, b = f"model.layers.{i}.", f"blocks.{i}."
        bias = lambda n: w.get(p + n + ".bias")  # noqa: E731
        s[b + "hook_resid_pre"] = x
        q = tr.rms_norm(tr.linear(x, w[p + "self_attn.q_proj.weight"], bias("self_attn.q_proj")),
                        w[p + "self_attn.q_norm.weight"], c.eps)
        k = tr.rms_norm(tr.linear(x, w[p + "self_attn.k_proj.weight"], bias("self_attn.k_proj")),
                        w[p + "self_attn.k_norm.weight"], c.eps)
        v = tr.linear(x, w[p + "self_attn.v_proj.weight"], bias("self_attn.v_proj"))
        s[b + "attn.hook_q"], s[b + "attn.hook_k"], s[b + "attn.hook_v"] = q, k, v
        q, k, v = (t.view(B, T, -1, hd).transpose(1, 2) for t in (q, k, v))
        q = (q * cos) + (tr.rotate_half(q) * sin)
        k = (k * cos) + (tr.rotate_half(k) * sin)
        n_rep = H // KV
        k = k[:, :, None].expand(B, KV, n_rep, T, hd).reshape(B, H, T, hd)
        v = v[:, :, None].expand(B, KV, n_rep, T, hd).reshape(B, H, T, hd)
        att = tr.softmax32(torch.matmul(q, k.transpose(2, 3)) * scaling + mask)
        s[b + "attn.hook_pattern"] = att
        z = torch.matmul(att, v).transpose(1, 2).contiguous().reshape(B, T, -1)
        s[b + "attn.hook_z"] = z
        a = tr.linear(z, w[p + "self_attn.o_proj.weight"], bias("self_attn.o_proj"))
        s[b + "hook_attn_out"] = a
        a = tr.rms_norm(a, w[p + "post_attention_layernorm.weight"], c.eps)
        s[b + "ln1_post.hook_normalized"] = a
        x = x + a
        s[b + "hook_resid_mid"] = x
        g = tr.linear(x, w[p + "mlp.gate_proj.weight"])
        u = tr.linear(x, w[p + "mlp.up_proj.weight"])
        s[b + "mlp.hook_pre"], s[b + "mlp.hook_pre_linear"] = g, u
        m = act(g) * u
        s[b + "mlp.hook_post"] = m
        d = tr.linear(m, w[p + "mlp.down_proj.weight"])
        s[b + "hook_mlp_out"] = d
        d = tr.rms_norm(d, w[p + "post_feedforward_layernorm.weight"], c.eps)
        s[b + "ln2_post.hook_normalized"] = d
        x = x + d
        s[b + "hook_resid_post"] = x
        hidden.append(x)
    x = tr.rms_norm(x, w["model.norm.weight"], c.eps)
    s["ln_final.hook_normalized"] = x
    hidden[-1] = x  # HF's last hidden state is the final norm's output
    s["logits"] = tr.linear(x, w["model.embed_tokens.weight"] if c.tied else w["lm_head.weight"])
    for k_, h_ in enumerate(hidden):
        s[f"hidden_states.{k_}"] = h_
    return s


def hf_hooks(layer, block, reg):
    """The olmo2-only sites on a real HF Olmo2DecoderLayer, for torch_reference.hf_cross_check."""
    reg(layer.post_attention_layernorm, "post", block + "ln1_post.hook_normalized")
    reg(layer.post_feedforward_layernorm, "post", block + "ln2_post.hook_normalized")
    reg(layer.mlp, "pre", block + "hook_resid_mid")


def _olmo2(**kw):
    cfg = dict(model_type="olmo2", vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=4, hidden_act="silu", max_position_embeddings=128,
               rms_norm_eps=1e-5, initializer_range=0.02, attention_bias=False, attention_dropout=0.0,
               use_cache=True, pad_token_id=1, bos_token_id=None, eos_token_id=5, tie_word_embeddings=False)
    cfg.update(kw)
    return cfg


# name: (config.json, dtype on disk, extra cases, transformers style of config.json), as torch_reference.SPECS
SPECS = {
    # grouped-query attention (4 heads / 2 kv: q_norm over 32 values, k_norm over 16), tied head, linear rope
    "olmo2-gqa-linear-rope": (_olmo2(num_key_value_heads=2, tie_word_embeddings=True,
                                     rope_parameters={"rope_theta": 500000.0, "rope_type": "linear",
                                                      "factor": 4.0}),
                              torch.float32, {}, 5),
    # full multi-head attention, untied head, eps 1e-6, head_dim 12 != 40 / 4 (q/k/v 48 wide), q/k/v/o biases,
    # 3 layers, two eos ids, bf16 on disk, transformers-4 config (rope_theta)
    "olmo2-mha-headdim": (_olmo2(hidden_size=40, num_hidden_layers=3, head_dim=12, num_attention_heads=4,
                                 num_key_value_heads=4, rms_norm_eps=1e-6, attention_bias=True,
                                 rope_theta=10000.0, rope_scaling=None, eos_token_id=[5, 6]),
                          torch.bfloat16, {}, 4),
}
