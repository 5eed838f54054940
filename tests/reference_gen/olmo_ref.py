"""OLMo 1 (model_type "olmo") for torch_reference.py, formula for formula from HF's modular_olmo.py.

A Llama decoder with two differences:
* OlmoLayerNorm: F.layer_norm over the hidden size in fp32 with no weight and no bias, eps fixed at 1e-5, for
  input_layernorm, post_attention_layernorm and the final norm;
* clip_qkv (when set): q, k and v are clamped in place to [-clip_qkv, clip_qkv] right after their projections.

Sites: the Llama family's. attn.hook_q / hook_k / hook_v are the values attention uses, i.e. after the clamp (HF
clamps the projections' outputs in place, so a hook that copies q_proj's output at once would see the unclipped
values; hf_hooks re-reads them after the attention module ran).
"""
import torch
import torch.nn.functional as F

ARCH = {"olmo": "OlmoForCausalLM"}


def configure(c, raw, rope):
    """OlmoConfig's fields and defaults; head_dim as the modeling code reads it (getattr, else hidden // heads)."""
    g = raw.get
    c.hidden = g("hidden_size", 4096)
    c.layers = g("num_hidden_layers", 32)
    c.heads = g("num_attention_heads", 32)
    c.kv_heads = g("num_key_value_heads") or c.heads
    c.head_dim = g("head_dim") or c.hidden // c.heads
    c.inner = g("intermediate_size", 11008)
    c.act = g("hidden_act", "silu")
    c.tied = g("tie_word_embeddings", False)
    c.bias = g("attention_bias", False)
    c.clip_qkv = g("clip_qkv")
    c.rope = rope


def weight_shapes(c):
    """HF parameter names and shapes in OlmoForCausalLM's named_parameters order (no norm weights exist)."""
    d, hd, H, KV = c.hidden, c.head_dim, c.heads, c.kv_heads
    out = [("model.embed_tokens.weight", [c.vocab, d])]
    for i in range(c.layers):
        p = f"model.layers.{i}."
        for n, rows, cols in (("q_proj", H * hd, d), ("k_proj", KV * hd, d), ("v_proj", KV * hd, d),
                              ("o_proj", d, H * hd)):
            out += [(p + f"self_attn.{n}.weight", [rows, cols])]
            if c.bias:
                out += [(p + f"self_attn.{n}.bias", [rows])]
        out += [(p + "mlp.gate_proj.weight", [c.inner, d]), (p + "mlp.up_proj.weight", [c.inner, d]),
                (p + "mlp.down_proj.weight", [d, c.inner])]
    if not c.tied:
        out += [("lm_head.weight", [c.vocab, d])]
    return out


def layer_norm(x):
    """OlmoLayerNorm."""
    return F.layer_norm(x.float(), (x.shape[-1],), None, None, eps=1e-5)


def forward(model, ids, tr):
    """OlmoForCausalLM's eager forward on ids [1, T]; `tr` is torch_reference (its shared ops)."""
    c, w, s = model.cfg, model.w, {}
    B, T = ids.shape
    H, KV, hd = c.heads, c.kv_heads, c.head_dim
    x = F.embedding(ids, w["model.embed_tokens.weight"])
    s["hook_embed"] = x
    hidden = [x]
    pos = torch.arange(T)[None, :]
    inv_freq = tr.inv_freq_for(c.rope, hd).to(c.buffer_dtype).float()
    freqs = (inv_freq[None, :, None].float() @ pos[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    mask = tr.additive_mask(T)
    scaling = hd ** -0.5
    act = tr.act_fn(c.act)

    def clip(t):
        return t if c.clip_qkv is None else t.clamp(min=-c.clip_qkv, max=c.clip_qkv)

    for i in range(c.layers):
        p, b = f"model.layers.{i}.", f"blocks.{i}."
        bias = lambda n: w.get(p + n + ".bias")  # noqa: E731
        s[b + "hook_resid_pre"] = x
        h = layer_norm(x)
        s[b + "ln1.hook_normalized"] = h
        q = clip(tr.linear(h, w[p + "self_attn.q_proj.weight"], bias("self_attn.q_proj")))
        k = clip(tr.linear(h, w[p + "self_attn.k_proj.weight"], bias("self_attn.k_proj")))
        v = clip(tr.linear(h, w[p + "self_attn.v_proj.weight"], bias("self_attn.v_proj")))
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
        x = x + a
        s[b + "hook_resid_mid"] = x
        h = layer_norm(x)
        s[b + "ln2.hook_normalized"] = h
        g = tr.linear(h, w[p + "mlp.gate_proj.weight"])
        u = tr.linear(h, w[p + "mlp.up_proj.weight"])
        s[b + "mlp.hook_pre"], s[b + "mlp.hook_pre_linear"] = g, u
        m = act(g) * u
        s[b + "mlp.hook_post"] = m
        d = tr.linear(m, w[p + "mlp.down_proj.weight"])
        s[b + "hook_mlp_out"] = d
        x = x + d
        s[b + "hook_resid_post"] = x
        hidden.append(x)
    x = layer_norm(x)
    s["ln_final.hook_normalized"] = x
    hidden[-1] = x
    s["logits"] = tr.linear(x, w["model.embed_tokens.weight"] if c.tied else w["lm_head.weight"])
    for k_, h_ in enumerate(hidden):
        s[f"hidden_states.{k_}"] = h_
    return s


def hf_hooks(attn, block, keep, hooks):
    """On a real HF OlmoAttention: q/k/v as attention used them (after the in-place clamp), replacing the copies
    the generic q_proj / k_proj / v_proj hooks took before it."""
    outputs = {}
    for name in ("q", "k", "v"):
        proj = getattr(attn, name + "_proj")
        hooks.append(proj.register_forward_hook(lambda m, a, o, n=name: outputs.__setitem__(n, o)))
    hooks.append(attn.register_forward_hook(
        lambda m, a, o: [keep(block + f"attn.hook_{n}", outputs[n]) for n in ("q", "k", "v")]))


def _olmo(**kw):
    cfg = dict(model_type="olmo", vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=4, hidden_act="silu", max_position_embeddings=128,
               initializer_range=0.02, attention_bias=False, attention_dropout=0.0, clip_qkv=None, use_cache=True,
               pad_token_id=1, bos_token_id=None, eos_token_id=5, tie_word_embeddings=False)
    cfg.update(kw)
    return cfg


SPECS = {
    # clip_qkv 0.25 clamps many q/k/v values (they reach ~1 here), 4 heads / 2 kv, tied, transformers-4 config
    "olmo-clip-qkv": (_olmo(num_key_value_heads=2, clip_qkv=0.25, tie_word_embeddings=True, rope_theta=10000.0,
                            rope_scaling=None),
                      torch.float32, {}, 4),
    # no clipping, untied, q/k/v/o biases, 3 layers, linear rope, bf16 on disk, transformers-5 config
    "olmo-bias-bf16": (_olmo(num_hidden_layers=3, attention_bias=True,
                             rope_parameters={"rope_theta": 10000.0, "rope_type": "linear", "factor": 2.0}),
                       torch.bfloat16, {}, 5),
}
