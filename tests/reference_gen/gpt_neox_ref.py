"""GPT-NeoX (Pythia) for torch_reference.py, formula for formula from HF's modeling_gpt_neox.py (eager, fp32):
fused query_key_value viewed per head as [heads, 3 * head_size] (q, k, v of a head adjacent), rotary over the
first int(head_size * rotary_pct) dims of each head, LayerNorms with bias, parallel or sequential residual,
exact-gelu MLP with biases, embed_out head. Sites: TransformerLens names, hook_q/k/v per head [T, H, hd]."""
import torch
import torch.nn.functional as F


def configure(c, raw):
    g = raw.get
    c.hidden = g("hidden_size")
    c.layers = g("num_hidden_layers")
    c.heads = c.kv_heads = g("num_attention_heads")
    c.head_dim = c.hidden // c.heads
    c.inner = g("intermediate_size")
    c.act = g("hidden_act", "gelu")
    c.eps = g("layer_norm_eps", 1e-5)
    c.parallel = g("use_parallel_residual", True)
    c.bias = g("attention_bias", True)
    c.tied = g("tie_word_embeddings", False)
    rp = dict(raw.get("rope_parameters") or {})  # transformers 5; transformers 4 has rotary_pct, rotary_emb_base
    c.rope = {"rope_type": rp.get("rope_type", "default"),
              "rope_theta": rp.get("rope_theta", g("rotary_emb_base", 10000)),
              "partial_rotary_factor": rp.get("partial_rotary_factor", g("partial_rotary_factor", g("rotary_pct", 0.25)))}


def weight_shapes(c):
    d = c.hidden
    out = [("gpt_neox.embed_in.weight", [c.vocab, d])]
    for i in range(c.layers):
        p = f"gpt_neox.layers.{i}."
        out += [(p + "input_layernorm.weight", [d]), (p + "input_layernorm.bias", [d]),
                (p + "post_attention_layernorm.weight", [d]), (p + "post_attention_layernorm.bias", [d]),
                (p + "attention.query_key_value.weight", [3 * d, d])]
        if c.bias:
            out += [(p + "attention.query_key_value.bias", [3 * d])]
        out += [(p + "attention.dense.weight", [d, d])]
        if c.bias:
            out += [(p + "attention.dense.bias", [d])]
        out += [(p + "mlp.dense_h_to_4h.weight", [c.inner, d]), (p + "mlp.dense_h_to_4h.bias", [c.inner]),
                (p + "mlp.dense_4h_to_h.weight", [d, c.inner]), (p + "mlp.dense_4h_to_h.bias", [d])]
    out += [("gpt_neox.final_layer_norm.weight", [d]), ("gpt_neox.final_layer_norm.bias", [d])]
    if not c.tied:
        out += [("embed_out.weight", [c.vocab, d])]
    return out


def forward(tr, model, ids, prefill=None):
    c, w, s = model.cfg, model.w, {}
    B, T = ids.shape
    H, hd, d = c.heads, c.head_dim, c.hidden
    x = F.embedding(ids, w["gpt_neox.embed_in.weight"])
    s["hook_embed"] = x
    hidden = [x]
    inv_freq = tr.inv_freq_for(c.rope, hd)
    pos = torch.arange(T).float()
    freqs = pos[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    rd = cos.shape[-1]
    mask = tr.additive_mask(T)
    scaling = hd ** -0.5
    act = tr.act_fn(c.act)

    def ln(t, name):
        return F.layer_norm(t, (d,), w[name + ".weight"], w[name + ".bias"], c.eps)

    def rotate(t):  # apply_rotary_pos_emb on the first rd dims, the rest passed through
        r, rest = t[..., :rd], t[..., rd:]
        return torch.cat(((r * cos) + (tr.rotate_half(r) * sin), rest), dim=-1)

    def mlp(h, p, b):
        pre = tr.linear(h, w[p + "mlp.dense_h_to_4h.weight"], w[p + "mlp.dense_h_to_4h.bias"])
        s[b + "mlp.hook_pre"] = pre
        post = act(pre)
        s[b + "mlp.hook_post"] = post
        out = tr.linear(post, w[p + "mlp.dense_4h_to_h.weight"], w[p + "mlp.dense_4h_to_h.bias"])
        s[b + "hook_mlp_out"] = out
        return out

    for i in range(c.layers):
        p, b = f"gpt_neox.layers.{i}.", f"blocks.{i}."
        s[b + "hook_resid_pre"] = x
        h = ln(x, p + "input_layernorm")
        s[b + "ln1.hook_normalized"] = h
        qkv = tr.linear(h, w[p + "attention.query_key_value.weight"], w.get(p + "attention.query_key_value.bias"))
        qkv = qkv.view(B, T, H, 3 * hd)
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        s[b + "attn.hook_q"], s[b + "attn.hook_k"], s[b + "attn.hook_v"] = q, k, v
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = rotate(q), rotate(k)
        att = torch.matmul(q, k.transpose(2, 3)) * scaling
        att = tr.softmax32(att + mask)
        s[b + "attn.hook_pattern"] = att
        z = torch.matmul(att, v).transpose(1, 2).contiguous().reshape(B, T, -1)
        s[b + "attn.hook_z"] = z
        a = tr.linear(z, w[p + "attention.dense.weight"], w.get(p + "attention.dense.bias"))
        s[b + "hook_attn_out"] = a
        if c.parallel:
            h2 = ln(x, p + "post_attention_layernorm")
            s[b + "ln2.hook_normalized"] = h2
            x = mlp(h2, p, b) + a + x
        else:
            x = a + x
            s[b + "hook_resid_mid"] = x
            h2 = ln(x, p + "post_attention_layernorm")
            s[b + "ln2.hook_normalized"] = h2
            x = mlp(h2, p, b) + x
        s[b + "hook_resid_post"] = x
        hidden.append(x)
    x = ln(x, "gpt_neox.final_layer_norm")
    s["ln_final.hook_normalized"] = x
    hidden[-1] = x
    s["logits"] = tr.linear(x, w["gpt_neox.embed_in.weight"] if c.tied else w["embed_out.weight"])
    for k_, h_ in enumerate(hidden):
        s[f"hidden_states.{k_}"] = h_
    return s


def hf_hooks(model, reg, keep, hooks):
    """Hooks on HF's GPTNeoXForCausalLM for torch_reference.hf_cross_check (needs transformers): the same sites
    as forward() above; q, k, v from the query_key_value output viewed [T, heads, 3 * head_size]."""
    base, c = model.gpt_neox, model.config
    heads, hd = c.num_attention_heads, c.hidden_size // c.num_attention_heads
    reg(base.embed_in, "post", "hook_embed")

    def split_qkv(b):
        def hook(module, args, out):
            qkv = out.view(*out.shape[:-1], heads, 3 * hd)
            for j, name in enumerate(("q", "k", "v")):
                keep(b + "attn.hook_" + name, qkv[..., j * hd:(j + 1) * hd])
        return hook

    for i, L in enumerate(base.layers):
        b = f"blocks.{i}."
        reg(L, "pre", b + "hook_resid_pre")
        reg(L.input_layernorm, "post", b + "ln1.hook_normalized")
        hooks.append(L.attention.query_key_value.register_forward_hook(split_qkv(b)))
        reg(L.attention.dense, "pre", b + "attn.hook_z")
        reg(L.attention, "post", b + "hook_attn_out")
        if not c.use_parallel_residual:
            reg(L.post_attention_layernorm, "pre", b + "hook_resid_mid")
        reg(L.post_attention_layernorm, "post", b + "ln2.hook_normalized")
        reg(L.mlp.dense_h_to_4h, "post", b + "mlp.hook_pre")
        reg(L.mlp.dense_4h_to_h, "pre", b + "mlp.hook_post")
        reg(L.mlp, "post", b + "hook_mlp_out")
        reg(L, "post", b + "hook_resid_post")
    reg(base.final_layer_norm, "post", "ln_final.hook_normalized")
