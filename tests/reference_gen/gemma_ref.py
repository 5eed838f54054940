"""Gemma 2 and Gemma 3 (text) for torch_reference.py, formula for formula from HF's modeling_gemma2.py /
modeling_gemma3.py and their configuration classes (eager attention, fp32).

What sets them apart from the Llama family: RMSNorm with zero-centred weights applied as (1 + w) in fp32, the
embedding scaled by sqrt(hidden_size) held in the activation dtype, four norms per layer (a "sandwich" around
attention and MLP), attention scaled by query_pre_attn_scalar**-0.5, Gemma 2's logit soft-capping (attention
scores before the mask, and the final logits), sliding-window layers alternating with full ones, and Gemma 3's
q_norm/k_norm and per-layer-type rotary tables (a local base for sliding layers, the global one with its
scaling for full layers). A multimodal `gemma3` checkpoint (Gemma3ForConditionalGeneration) keeps the text
model's config under `text_config` and its weights under `language_model.model.*` (transformers 4) or
`model.language_model.*` (transformers 5); only that decoder and its tied head are used.

Sites: those of tests/data/reference/README.md, where `hook_embed` is the scaled embedding (TransformerLens's
Gemma Embed), `hook_attn_out` / `hook_mlp_out` the attention / MLP module outputs as everywhere in this project,
and the two extra norms as `ln1_post.hook_normalized` (post_attention_layernorm: what the attention adds to the
residual) and `ln2_post.hook_normalized` (post_feedforward_layernorm), TransformerLens's module names.
"""
import torch
import torch.nn.functional as F

MODEL_TYPES = ("gemma2", "gemma3_text", "gemma3")
ARCH = {"gemma2": "Gemma2ForCausalLM", "gemma3_text": "Gemma3ForCausalLM", "gemma3": "Gemma3ForConditionalGeneration"}


def text_config(raw):
    """The decoder's config.json keys: `text_config` of a multimodal gemma3 file, the file itself otherwise."""
    return raw["text_config"] if raw["model_type"] == "gemma3" else raw


def weight_prefix(raw, names):
    """Where the decoder's tensors live: model.* for the causal LMs; for a multimodal gemma3 checkpoint
    language_model.model.* (transformers 4) or model.language_model.* (transformers 5)."""
    if raw["model_type"] != "gemma3":
        return "model.", "lm_head."
    if any(n.startswith("model.language_model.") for n in names):
        return "model.language_model.", "lm_head."
    return "language_model.model.", "language_model.lm_head."


def configure(cfg, raw, rope_parameters):
    """Fills torch_reference.Config's fields for a Gemma config (HF 5 defaults where a key is absent)."""
    t = text_config(raw)
    g = t.get
    gemma2 = raw["model_type"] == "gemma2"
    cfg.multimodal = raw["model_type"] == "gemma3"
    cfg.hidden = g("hidden_size")
    cfg.layers = g("num_hidden_layers")
    cfg.heads = g("num_attention_heads")
    cfg.kv_heads = g("num_key_value_heads") or cfg.heads
    cfg.head_dim = g("head_dim", 256)
    cfg.inner = g("intermediate_size")
    cfg.act = g("hidden_activation", "gelu_pytorch_tanh")
    cfg.eps = g("rms_norm_eps", 1e-6)
    cfg.tied = raw.get("tie_word_embeddings", True)
    cfg.qkv_bias = cfg.o_bias = g("attention_bias", False)
    cfg.qk_norm = not gemma2
    cfg.scaling = g("query_pre_attn_scalar", 256) ** -0.5
    # Gemma3Attention passes no softcap to the attention function; Gemma3ForConditionalGeneration never caps logits
    cfg.attn_softcap = g("attn_logit_softcapping", 50.0) if gemma2 else None
    cfg.final_softcap = None if cfg.multimodal else g("final_logit_softcapping", 30.0 if gemma2 else None)
    if g("layer_types"):
        cfg.layer_types = list(g("layer_types"))
    elif gemma2:  # Gemma2Config: even layers slide
        cfg.layer_types = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(cfg.layers)]
    else:  # Gemma3TextConfig: every sliding_window_pattern-th layer is full
        pattern = g("sliding_window_pattern", 6)
        cfg.layer_types = ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
                           for i in range(cfg.layers)]
    cfg.window = g("sliding_window", 4096)
    cfg.rope = rope_by_layer_type(t, gemma2, rope_parameters)


def rope_by_layer_type(t, gemma2, rope_parameters):
    """{layer type: rope parameters}. Gemma 2: one table. Gemma 3: transformers 5 nests rope_parameters by layer
    type; transformers 4 has rope_theta (+ rope_scaling) for full layers and rope_local_base_freq for sliding."""
    if gemma2:
        rp = rope_parameters(t)
        return {"full_attention": rp, "sliding_attention": rp}
    nested = t.get("rope_parameters")
    if nested and "full_attention" in nested:
        return {k: rope_parameters({"rope_parameters": v}) for k, v in nested.items()}
    full = rope_parameters(dict(t, rope_theta=t.get("rope_theta", 1000000.0)))
    return {"full_attention": full,
            "sliding_attention": {"rope_type": "default", "rope_theta": t.get("rope_local_base_freq", 10000.0)}}


def gemma_rms_norm(x, w, eps):
    """Gemma2RMSNorm / Gemma3RMSNorm: normalise in fp32, multiply by (1 + w) in fp32, then cast."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + w.float())


def softcap(x, cap):
    return torch.tanh(x / cap) * cap


def forward(model, ids, ops):
    """Gemma2Model / Gemma3TextModel + lm_head; `ops` is torch_reference (its shared helpers)."""
    c, s = model.cfg, {}
    prefix, head_prefix = weight_prefix(c.raw, model.w)
    w = {k[len(prefix):]: v for k, v in model.w.items() if k.startswith(prefix)}
    B, T = ids.shape
    H, KV, hd = c.heads, c.kv_heads, c.head_dim
    x = F.embedding(ids, w["embed_tokens.weight"])
    x = x * torch.tensor(c.hidden ** 0.5, dtype=x.dtype)
    s["hook_embed"] = x
    hidden = [x]
    pos = torch.arange(T)[None, :].float()
    rotary = {}
    for kind, rp in c.rope.items():
        inv_freq = ops.inv_freq_for(rp, hd).to(c.buffer_dtype).float()
        emb = (inv_freq[None, :, None] @ pos[:, None, :]).transpose(1, 2)
        emb = torch.cat((emb, emb), dim=-1)
        rotary[kind] = (emb.cos()[:, None], emb.sin()[:, None])
    masks = {"full_attention": ops.additive_mask(T), "sliding_attention": ops.additive_mask(T, c.window)}
    act = ops.act_fn(c.act)
    norm = lambda t, name: gemma_rms_norm(t, w[name + ".weight"], c.eps)  # noqa: E731
    for i in range(c.layers):
        p, b = f"layers.{i}.", f"blocks.{i}."
        bias = lambda n: w.get(p + n + ".bias")  # noqa: E731
        s[b + "hook_resid_pre"] = x
        h = norm(x, p + "input_layernorm")
        s[b + "ln1.hook_normalized"] = h
        q = F.linear(h, w[p + "self_attn.q_proj.weight"], bias("self_attn.q_proj"))
        k = F.linear(h, w[p + "self_attn.k_proj.weight"], bias("self_attn.k_proj"))
        v = F.linear(h, w[p + "self_attn.v_proj.weight"], bias("self_attn.v_proj"))
        q, k, v = q.view(B, T, -1, hd), k.view(B, T, -1, hd), v.view(B, T, -1, hd)
        if c.qk_norm:
            q, k = norm(q, p + "self_attn.q_norm"), norm(k, p + "self_attn.k_norm")
            s[b + "attn.hook_q"], s[b + "attn.hook_k"] = q, k
        else:
            s[b + "attn.hook_q"], s[b + "attn.hook_k"] = q.reshape(B, T, -1), k.reshape(B, T, -1)
        s[b + "attn.hook_v"] = v.reshape(B, T, -1)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        cos, sin = rotary[c.layer_types[i]]
        q = (q * cos) + (ops.rotate_half(q) * sin)
        k = (k * cos) + (ops.rotate_half(k) * sin)
        n_rep = H // KV
        k = k[:, :, None].expand(B, KV, n_rep, T, hd).reshape(B, H, T, hd)
        v = v[:, :, None].expand(B, KV, n_rep, T, hd).reshape(B, H, T, hd)
        att = torch.matmul(q, k.transpose(2, 3)) * c.scaling
        if c.attn_softcap is not None:
            att = softcap(att, c.attn_softcap)
        att = ops.softmax32(att + masks[c.layer_types[i]])
        s[b + "attn.hook_pattern"] = att
        z = torch.matmul(att, v).transpose(1, 2).contiguous().reshape(B, T, -1)
        s[b + "attn.hook_z"] = z
        a = F.linear(z, w[p + "self_attn.o_proj.weight"], bias("self_attn.o_proj"))
        s[b + "hook_attn_out"] = a
        a = norm(a, p + "post_attention_layernorm")
        s[b + "ln1_post.hook_normalized"] = a
        x = x + a
        s[b + "hook_resid_mid"] = x
        h = norm(x, p + "pre_feedforward_layernorm")
        s[b + "ln2.hook_normalized"] = h
        gate = F.linear(h, w[p + "mlp.gate_proj.weight"])
        up = F.linear(h, w[p + "mlp.up_proj.weight"])
        s[b + "mlp.hook_pre"], s[b + "mlp.hook_pre_linear"] = gate, up
        m = act(gate) * up
        s[b + "mlp.hook_post"] = m
        d = F.linear(m, w[p + "mlp.down_proj.weight"])
        s[b + "hook_mlp_out"] = d
        d = norm(d, p + "post_feedforward_layernorm")
        s[b + "ln2_post.hook_normalized"] = d
        x = x + d
        s[b + "hook_resid_post"] = x
        hidden.append(x)
    x = norm(x, "norm")
    s["ln_final.hook_normalized"] = x
    hidden[-1] = x
    head = w["embed_tokens.weight"] if c.tied else model.w[head_prefix + "weight"]
    logits = F.linear(x, head)
    if c.final_softcap is not None:
        logits = softcap(logits, c.final_softcap)
    s["logits"] = logits
    for k_, h_ in enumerate(hidden):
        s[f"hidden_states.{k_}"] = h_
    return s


def weight_shapes(c, raw):
    """HF tensor names and shapes (tied heads omitted). A multimodal gemma3 checkpoint gets the transformers-4
    names plus one tiny vision-tower tensor, which a loader of the text model must ignore."""
    prefix, head_prefix = weight_prefix(raw, [])
    d, hd, H, KV = c.hidden, c.head_dim, c.heads, c.kv_heads
    out = [(prefix + "embed_tokens.weight", [c.vocab, d])]
    for i in range(c.layers):
        p = f"{prefix}layers.{i}."
        for n, rows in (("q_proj", H * hd), ("k_proj", KV * hd), ("v_proj", KV * hd)):
            out += [(p + f"self_attn.{n}.weight", [rows, d])]
        out += [(p + "self_attn.o_proj.weight", [d, H * hd])]
        if c.qk_norm:
            out += [(p + "self_attn.q_norm.weight", [hd]), (p + "self_attn.k_norm.weight", [hd])]
        for n, shape in (("gate_proj", [c.inner, d]), ("up_proj", [c.inner, d]), ("down_proj", [d, c.inner])):
            out += [(p + f"mlp.{n}.weight", shape)]
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            out += [(p + n + ".weight", [d])]
    out += [(prefix + "norm.weight", [d])]
    if not c.tied:
        out += [(head_prefix + "weight", [c.vocab, d])]
    if c.multimodal:
        out += [("vision_tower.vision_model.post_layernorm.weight", [4])]
    return out


def _gemma(model_type, vocab, **kw):
    cfg = dict(model_type=model_type, vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
               num_attention_heads=4, num_key_value_heads=2, head_dim=16, hidden_activation="gelu_pytorch_tanh",
               max_position_embeddings=128, rms_norm_eps=1e-6, attention_bias=False, attention_dropout=0.0,
               initializer_range=0.02, use_cache=True, bos_token_id=2, eos_token_id=1, pad_token_id=0)
    cfg.update(kw)
    return cfg


def specs(vocab, long_case):
    """torch_reference.SPECS rows: name -> (config.json, dtype on disk, extra cases, transformers style)."""
    text3 = _gemma("gemma3_text", vocab, num_hidden_layers=2, query_pre_attn_scalar=16, sliding_window=4,
                   sliding_window_pattern=2, rope_theta=10000.0, rope_local_base_freq=1000.0,
                   rope_scaling={"rope_type": "linear", "factor": 8.0}, attn_logit_softcapping=None,
                   final_logit_softcapping=None)
    text3.pop("tie_word_embeddings", None)
    multimodal = dict(model_type="gemma3", text_config=text3, tie_word_embeddings=True, bos_token_id=2,
                      eos_token_id=1, pad_token_id=0, image_token_index=255, mm_tokens_per_image=4,
                      vision_config={"model_type": "siglip_vision_model", "hidden_size": 4, "num_hidden_layers": 1})
    return {
        # soft-capping bends most scores (cap 2) and logits (cap 2); layers 0 and 2 slide over 8 keys (the
        # Gemma2Config rule, no layer_types in the file); query_pre_attn_scalar 24 != head_dim; untied head
        "gemma2-softcap": (_gemma("gemma2", vocab, query_pre_attn_scalar=24, sliding_window=8,
                                  attn_logit_softcapping=2.0, final_logit_softcapping=2.0, rope_theta=10000.0,
                                  tie_word_embeddings=False),
                           torch.float32, long_case, 4),
        # head_dim 16 with hidden 48 (q: 64 rows), query_pre_attn_scalar 32, no soft-capping, tied, explicit
        # layer_types in an unusual order (full, sliding), transformers-5 config
        "gemma2-headdim": (_gemma("gemma2", vocab, hidden_size=48, num_hidden_layers=2, query_pre_attn_scalar=32,
                                  sliding_window=4, attn_logit_softcapping=None, final_logit_softcapping=None,
                                  layer_types=["full_attention", "sliding_attention"],
                                  rope_parameters={"rope_theta": 10000.0, "rope_type": "default"},
                                  tie_word_embeddings=True),
                           torch.float32, long_case, 5),
        # q_norm/k_norm (query_pre_attn_scalar 64 keeps the scores of the normalised q, k moderate), sliding layers
        # 0 and 1 with the local base 100, full layer 2 with theta 10000 and linear scaling 8 (transformers-5
        # rope_parameters per layer type), final soft-capping 2; attn_logit_softcapping set but unused by Gemma 3
        "gemma3-text": (_gemma("gemma3_text", vocab, query_pre_attn_scalar=64, sliding_window=8,
                               layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                               rope_parameters={
                                   "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 10000.0},
                                   "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}},
                               attn_logit_softcapping=2.0, final_logit_softcapping=2.0, tie_word_embeddings=True),
                        torch.float32, long_case, 5),
        # Gemma3ForConditionalGeneration: text_config in the transformers-4 style (rope_local_base_freq,
        # rope_scaling, sliding_window_pattern 2), weights under language_model.model.*, one vision tensor
        "gemma3-multimodal": (multimodal, torch.float32, long_case, 4),
    }


def text_decoder(base):
    """The decoder inside HF's base model: Gemma3Model (multimodal) keeps it as .language_model."""
    return getattr(base, "language_model", base)


def register_hf_hooks(layers, reg):
    """Gemma's sites on HF's modules for torch_reference.hf_cross_check. Registered after its generic hooks, these
    fire later and so replace what those place on the wrong Gemma module: the MLP's input norm is
    pre_feedforward_layernorm (not post_attention_layernorm), and hook_embed is the scaled embedding that enters
    layer 0 (Gemma2's embed_tokens returns it unscaled). Other families: nothing."""
    if not layers or not hasattr(layers[0], "pre_feedforward_layernorm"):
        return
    reg(layers[0], "pre", "hook_embed")
    for i, layer in enumerate(layers):
        b = f"blocks.{i}."
        reg(layer.post_attention_layernorm, "post", b + "ln1_post.hook_normalized")
        reg(layer.pre_feedforward_layernorm, "pre", b + "hook_resid_mid")
        reg(layer.pre_feedforward_layernorm, "post", b + "ln2.hook_normalized")
        reg(layer.post_feedforward_layernorm, "post", b + "ln2_post.hook_normalized")
