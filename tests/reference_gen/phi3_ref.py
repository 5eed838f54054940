"""Phi-3 for torch_reference.py, formula for formula from HF's modeling_phi3.py and modeling_rope_utils.py
(eager, fp32): fused qkv_proj ([q; k; v] row blocks), fused gate_up_proj (gate first), Llama RMSNorm, partial
rotary (partial_rotary_factor), a sliding window on every layer when sliding_window is set, and LongRoPE
("longrope", or "su" in older files): short_factor / long_factor tables and cos/sin times attention_factor.

LongRoPE picks its table per forward call by the sequence length (max position + 1 > original_max_position_
embeddings: long). `prefill` reproduces generation with a KV cache: the prompt's rows were rotated in one call of
`prefill` tokens, each later row in a call of its own, so row p used the long table iff max(prefill, p + 1) >
original_max_position_embeddings."""
import math

import torch
import torch.nn.functional as F


def configure(c, raw):
    g = raw.get
    c.hidden = g("hidden_size")
    c.layers = g("num_hidden_layers")
    c.heads = g("num_attention_heads")
    c.kv_heads = g("num_key_value_heads") or c.heads
    c.head_dim = g("head_dim") or c.hidden // c.heads
    c.inner = g("intermediate_size")
    c.act = g("hidden_act", "silu")
    c.eps = g("rms_norm_eps", 1e-5)
    c.tied = g("tie_word_embeddings", False)
    c.window = g("sliding_window")
    rp = dict(raw.get("rope_parameters") or {})
    if not rp:  # transformers 4: rope_theta, rope_scaling, top-level partial_rotary_factor
        rp = dict(raw.get("rope_scaling") or {})
        rp["rope_theta"] = g("rope_theta", 10000.0)
        rp["partial_rotary_factor"] = g("partial_rotary_factor", 1.0)
    kind = rp.pop("type", None)
    rp.setdefault("rope_type", kind or "default")
    if rp["rope_type"] == "su":
        rp["rope_type"] = "longrope"
    rp.setdefault("original_max_position_embeddings", g("original_max_position_embeddings", 4096))
    c.rope = rp
    c.max_pos = g("max_position_embeddings", 4096)


def weight_shapes(c):
    d, hd, out = c.hidden, c.head_dim, [("model.embed_tokens.weight", [c.vocab, c.hidden])]
    for i in range(c.layers):
        p = f"model.layers.{i}."
        out += [(p + "self_attn.qkv_proj.weight", [(c.heads + 2 * c.kv_heads) * hd, d]),
                (p + "self_attn.o_proj.weight", [d, c.heads * hd]),
                (p + "mlp.gate_up_proj.weight", [2 * c.inner, d]), (p + "mlp.down_proj.weight", [d, c.inner]),
                (p + "input_layernorm.weight", [d]), (p + "post_attention_layernorm.weight", [d])]
    out += [("model.norm.weight", [d])]
    if not c.tied:
        out += [("lm_head.weight", [c.vocab, d])]
    return out


def rope_tables(tr, c):
    """(short inv_freq, long inv_freq or None, attention_factor): _compute_longrope_parameters."""
    rp = c.rope
    if rp["rope_type"] != "longrope":
        return tr.inv_freq_for(rp, c.head_dim), None, 1.0
    original = rp["original_max_position_embeddings"]
    factor = rp.get("factor") or c.max_pos / original
    attention_factor = rp.get("attention_factor")
    if attention_factor is None:
        attention_factor = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
    dim = int(c.head_dim * rp.get("partial_rotary_factor", 1.0))
    shape = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    base = rp["rope_theta"]
    table = lambda f: 1.0 / (torch.tensor(f, dtype=torch.float32) * base ** shape)  # noqa: E731
    return table(rp["short_factor"]), table(rp["long_factor"]), attention_factor


def forward(tr, model, ids, prefill=None):
    c, w, s = model.cfg, model.w, {}
    B, T = ids.shape
    H, KV, hd = c.heads, c.kv_heads, c.head_dim
    x = F.embedding(ids, w["model.embed_tokens.weight"])
    s["hook_embed"] = x
    hidden = [x]
    short, long_, scaling_factor = rope_tables(tr, c)
    pos = torch.arange(T)
    inv = short[None].expand(T, -1)
    if long_ is not None:
        rows_long = torch.maximum(torch.tensor(prefill or T), pos + 1) > c.rope["original_max_position_embeddings"]
        inv = torch.where(rows_long[:, None], long_[None], short[None])
    freqs = pos.float()[:, None] * inv
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = (emb.cos() * scaling_factor)[None, None], (emb.sin() * scaling_factor)[None, None]
    rd = cos.shape[-1]
    mask = tr.additive_mask(T, c.window)
    scaling = hd ** -0.5
    act = tr.act_fn(c.act)

    def rotate(t):
        r, rest = t[..., :rd], t[..., rd:]
        return torch.cat(((r * cos) + (tr.rotate_half(r) * sin), rest), dim=-1)

    for i in range(c.layers):
        p, b = f"model.layers.{i}.", f"blocks.{i}."
        s[b + "hook_resid_pre"] = x
        h = tr.rms_norm(x, w[p + "input_layernorm.weight"], c.eps)
        s[b + "ln1.hook_normalized"] = h
        qkv = tr.linear(h, w[p + "self_attn.qkv_proj.weight"])
        q, k, v = qkv[..., :H * hd], qkv[..., H * hd:(H + KV) * hd], qkv[..., (H + KV) * hd:]
        s[b + "attn.hook_q"], s[b + "attn.hook_k"], s[b + "attn.hook_v"] = q, k, v
        q, k, v = (t.reshape(B, T, -1, hd).transpose(1, 2) for t in (q, k, v))
        q, k = rotate(q), rotate(k)
        n_rep = H // KV
        k = k[:, :, None].expand(B, KV, n_rep, T, hd).reshape(B, H, T, hd)
        v = v[:, :, None].expand(B, KV, n_rep, T, hd).reshape(B, H, T, hd)
        att = torch.matmul(q, k.transpose(2, 3)) * scaling
        att = tr.softmax32(att + mask)
        s[b + "attn.hook_pattern"] = att
        z = torch.matmul(att, v).transpose(1, 2).contiguous().reshape(B, T, -1)
        s[b + "attn.hook_z"] = z
        a = tr.linear(z, w[p + "self_attn.o_proj.weight"])
        s[b + "hook_attn_out"] = a
        x = x + a
        s[b + "hook_resid_mid"] = x
        h = tr.rms_norm(x, w[p + "post_attention_layernorm.weight"], c.eps)
        s[b + "ln2.hook_normalized"] = h
        gate, up = tr.linear(h, w[p + "mlp.gate_up_proj.weight"]).chunk(2, dim=-1)
        s[b + "mlp.hook_pre"], s[b + "mlp.hook_pre_linear"] = gate, up
        m = up * act(gate)
        s[b + "mlp.hook_post"] = m
        d = tr.linear(m, w[p + "mlp.down_proj.weight"])
        s[b + "hook_mlp_out"] = d
        x = x + d
        s[b + "hook_resid_post"] = x
        hidden.append(x)
    x = tr.rms_norm(x, w["model.norm.weight"], c.eps)
    s["ln_final.hook_normalized"] = x
    hidden[-1] = x
    s["logits"] = tr.linear(x, w["model.embed_tokens.weight"] if c.tied else w["lm_head.weight"])
    for k_, h_ in enumerate(hidden):
        s[f"hidden_states.{k_}"] = h_
    return s


def hf_hooks(model, reg, keep, hooks):
    """Hooks on HF's Phi3ForCausalLM for torch_reference.hf_cross_check (needs transformers): the same sites as
    forward() above; q, k, v split from qkv_proj's output, gate and up chunked from gate_up_proj's."""
    base, c = model.model, model.config
    hd = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    q_width, kv_width = c.num_attention_heads * hd, (c.num_key_value_heads or c.num_attention_heads) * hd
    reg(base.embed_tokens, "post", "hook_embed")

    def split_qkv(b):
        def hook(module, args, out):
            keep(b + "attn.hook_q", out[..., :q_width])
            keep(b + "attn.hook_k", out[..., q_width:q_width + kv_width])
            keep(b + "attn.hook_v", out[..., q_width + kv_width:])
        return hook

    def split_gate_up(b):
        def hook(module, args, out):
            gate, up = out.chunk(2, dim=-1)
            keep(b + "mlp.hook_pre", gate)
            keep(b + "mlp.hook_pre_linear", up)
        return hook

    for i, L in enumerate(base.layers):
        b = f"blocks.{i}."
        reg(L, "pre", b + "hook_resid_pre")
        reg(L.input_layernorm, "post", b + "ln1.hook_normalized")
        hooks.append(L.self_attn.qkv_proj.register_forward_hook(split_qkv(b)))
        reg(L.self_attn.o_proj, "pre", b + "attn.hook_z")
        reg(L.self_attn, "post", b + "hook_attn_out")
        reg(L.post_attention_layernorm, "pre", b + "hook_resid_mid")
        reg(L.post_attention_layernorm, "post", b + "ln2.hook_normalized")
        hooks.append(L.mlp.gate_up_proj.register_forward_hook(split_gate_up(b)))
        reg(L.mlp.down_proj, "pre", b + "mlp.hook_post")
        reg(L.mlp, "post", b + "hook_mlp_out")
        reg(L, "post", b + "hook_resid_post")
    reg(base.norm, "post", "ln_final.hook_normalized")
