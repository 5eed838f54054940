"""Re-implementation of HF's sparse mixture-of-experts decoders, formula for formula: `qwen3_moe`
(modeling_qwen3_moe.py @ 16b6c53c: Qwen3MoeSparseMoeBlock, Qwen3MoeDecoderLayer) and `mixtral`
(modeling_mixtral.py @ 00d4b3d2: MixtralSparseMoeBlock, MixtralBlockSparseTop2MLP). torch_reference.py dispatches
these model types here; the shared ops (rms_norm, rotary, masks) are its own, imported when first used.

Router (both): logits = gate(x); p = softmax(logits, fp32); w, idx = topk(p, k); w /= w.sum() (qwen3_moe only with
norm_topk_prob, mixtral always); w.to(dtype). Experts: down(act(gate(x)) * up(x)) * w, index_add_ into zeros in
ascending expert index. transformers 4 and 5 compute the same in fp32 (v5 may keep w fp32; no difference here).
"""
import torch
import torch.nn.functional as F

MODEL_TYPES = ("qwen3_moe", "mixtral")
ARCH = {"qwen3_moe": "Qwen3MoeForCausalLM", "mixtral": "MixtralForCausalLM"}
# An engine whose router logits differ from these by rounding must still choose the same experts: the generator
# rejects a folder where the k-th and (k+1)-th probabilities of some token come closer than this.
MIN_ROUTING_GAP = 1e-4


def configure(c, raw):
    """Config fields (HF's defaults) on torch_reference's Config object `c`."""
    g = raw.get
    mt = raw["model_type"]
    c.hidden = g("hidden_size")
    c.layers = g("num_hidden_layers")
    c.heads = g("num_attention_heads")
    c.kv_heads = g("num_key_value_heads") or c.heads
    c.head_dim = g("head_dim") or c.hidden // c.heads
    c.inner = g("intermediate_size")
    c.act = g("hidden_act", "silu")
    c.tied = g("tie_word_embeddings", False)
    c.qkv_bias = c.o_bias = g("attention_bias", False) if mt == "qwen3_moe" else False
    c.mlp_bias = False
    c.qk_norm = mt == "qwen3_moe"
    from torch_reference import rope_parameters
    c.rope = rope_parameters(raw)
    if mt == "qwen3_moe":
        c.eps = g("rms_norm_eps", 1e-6)
        c.window = g("sliding_window") if g("use_sliding_window", False) else None
        c.experts = g("num_experts", 128)
        c.top_k = g("num_experts_per_tok", 8)
        c.expert_inner = g("moe_intermediate_size", 768)
        c.norm_topk = g("norm_topk_prob", False)
        step, dense = g("decoder_sparse_step", 1), g("mlp_only_layers") or []
        c.sparse = [i not in dense and c.experts > 0 and (i + 1) % step == 0 for i in range(c.layers)]
    else:
        c.eps = g("rms_norm_eps", 1e-5)
        c.window = g("sliding_window")
        c.experts = g("num_local_experts", 8)
        c.top_k = g("num_experts_per_tok", 2)
        c.expert_inner = c.inner
        c.norm_topk = True
        c.sparse = [True] * c.layers
    # Both models build one mask for every layer: sliding when config.sliding_window is set, else causal.
    c.layer_types = ["sliding_attention" if c.window is not None else "full_attention"] * c.layers


def expert_names(c, layer):
    """(router, [(gate, up, down) per expert]) tensor names as the Hub stores them."""
    p = f"model.layers.{layer}."
    if c.model_type == "mixtral":
        return p + "block_sparse_moe.gate.weight", [
            tuple(p + f"block_sparse_moe.experts.{e}.{n}.weight" for n in ("w1", "w3", "w2")) for e in range(c.experts)]
    return p + "mlp.gate.weight", [
        tuple(p + f"mlp.experts.{e}.{n}.weight" for n in ("gate_proj", "up_proj", "down_proj"))
        for e in range(c.experts)]


def weight_shapes(cfg):
    from torch_reference import Config
    c = Config(cfg)
    d, hd, out = c.hidden, c.head_dim, [("model.embed_tokens.weight", [c.vocab, c.hidden])]
    for i in range(c.layers):
        p = f"model.layers.{i}."
        out += [(p + "self_attn.q_proj.weight", [c.heads * hd, d]),
                (p + "self_attn.k_proj.weight", [c.kv_heads * hd, d]),
                (p + "self_attn.v_proj.weight", [c.kv_heads * hd, d]),
                (p + "self_attn.o_proj.weight", [d, c.heads * hd])]
        if c.qk_norm:
            out += [(p + "self_attn.q_norm.weight", [hd]), (p + "self_attn.k_norm.weight", [hd])]
        if c.sparse[i]:
            router, experts = expert_names(c, i)
            out += [(router, [c.experts, d])]
            for gate, up, down in experts:
                out += [(gate, [c.expert_inner, d]), (up, [c.expert_inner, d]), (down, [d, c.expert_inner])]
        else:
            out += [(p + "mlp.gate_proj.weight", [c.inner, d]), (p + "mlp.up_proj.weight", [c.inner, d]),
                    (p + "mlp.down_proj.weight", [d, c.inner])]
        out += [(p + "input_layernorm.weight", [d]), (p + "post_attention_layernorm.weight", [d])]
    out += [("model.norm.weight", [d])]
    if not c.tied:
        out += [("lm_head.weight", [c.vocab, d])]
    return out


def sparse_block(model, x, layer, s, b):
    """Qwen3MoeSparseMoeBlock / MixtralSparseMoeBlock on x [B, T, d]; records the router sites and the smallest
    gap between a token's k-th and (k+1)-th probability in model.min_routing_gap."""
    c, w = model.cfg, model.w
    B, T, d = x.shape
    router, experts = expert_names(c, layer)
    h = x.view(-1, d)
    logits = F.linear(h, w[router])
    p = F.softmax(logits, dim=1, dtype=torch.float)
    weights, chosen = torch.topk(p, c.top_k, dim=-1)
    if c.top_k < c.experts:
        ranked = torch.sort(p, dim=-1, descending=True).values
        gap = float((ranked[:, c.top_k - 1] - ranked[:, c.top_k]).min())
        model.min_routing_gap = min(getattr(model, "min_routing_gap", float("inf")), gap)
    if c.norm_topk:
        weights /= weights.sum(dim=-1, keepdim=True)
    weights = weights.to(h.dtype)
    s[b + "mlp.hook_router_logits"] = logits.view(B, T, -1)
    s[b + "mlp.hook_expert_indices"] = chosen.view(B, T, -1).float()
    s[b + "mlp.hook_expert_weights"] = weights.view(B, T, -1)
    out = torch.zeros((B * T, d), dtype=h.dtype)
    mask = F.one_hot(chosen, num_classes=c.experts).permute(2, 1, 0)  # [expert, rank, token]
    act = _act(c.act)
    for e in torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero():
        rank, token = torch.where(mask[e].squeeze(0))
        gate, up, down = experts[int(e)]
        rows = h[None, token].reshape(-1, d)
        y = F.linear(act(F.linear(rows, w[gate])) * F.linear(rows, w[up]), w[down]) * weights[token, rank, None]
        out.index_add_(0, token, y.to(h.dtype))
    model.experts_used.setdefault(layer, set()).update(int(i) for i in chosen.flatten())
    return out.view(B, T, d)


def hook_hf_router(gate, b, keep, config):
    """For hf_cross_check: HF's router logits (the gate's output; transformers 5's router returns them first) and
    the choices they imply, computed as HF's block does."""
    top_k = config.num_experts_per_tok
    norm = getattr(config, "norm_topk_prob", True)  # mixtral has no key: it always renormalises

    def hook(module, args, kwargs, out):
        logits = out[0] if isinstance(out, tuple) else out
        keep(b + "mlp.hook_router_logits", logits)
        weights, chosen = torch.topk(F.softmax(logits, dim=-1, dtype=torch.float), top_k, dim=-1)
        if norm:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        keep(b + "mlp.hook_expert_indices", chosen.float())
        keep(b + "mlp.hook_expert_weights", weights.to(logits.dtype))
    return gate.register_forward_hook(hook, with_kwargs=True)


def _act(name):
    from torch_reference import act_fn
    return act_fn(name)


def forward(model, ids):
    """The decoder (Qwen3MoeModel / MixtralModel + lm_head): every site, batch dimension kept."""
    from torch_reference import additive_mask, inv_freq_for, rms_norm, rotate_half, softmax32
    c, w, s = model.cfg, model.w, {}
    if not hasattr(model, "experts_used"):
        model.experts_used = {}
    B, T = ids.shape
    H, KV, hd = c.heads, c.kv_heads, c.head_dim
    x = F.embedding(ids, w["model.embed_tokens.weight"])
    s["hook_embed"] = x
    hidden = [x]
    inv_freq = inv_freq_for(c.rope, hd).to(c.buffer_dtype).float()
    freqs = (inv_freq[None, :, None] @ torch.arange(T)[None, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    mask = additive_mask(T, c.window)
    act = _act(c.act)
    for i in range(c.layers):
        p, b = f"model.layers.{i}.", f"blocks.{i}."
        s[b + "hook_resid_pre"] = x
        h = rms_norm(x, w[p + "input_layernorm.weight"], c.eps)
        s[b + "ln1.hook_normalized"] = h
        q = F.linear(h, w[p + "self_attn.q_proj.weight"]).view(B, T, -1, hd)
        k = F.linear(h, w[p + "self_attn.k_proj.weight"]).view(B, T, -1, hd)
        v = F.linear(h, w[p + "self_attn.v_proj.weight"]).view(B, T, -1, hd)
        if c.qk_norm:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], c.eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], c.eps)
            s[b + "attn.hook_q"], s[b + "attn.hook_k"] = q, k
        else:
            s[b + "attn.hook_q"], s[b + "attn.hook_k"] = q.reshape(B, T, -1), k.reshape(B, T, -1)
        s[b + "attn.hook_v"] = v.reshape(B, T, -1)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = (q * cos) + (rotate_half(q) * sin)
        k = (k * cos) + (rotate_half(k) * sin)
        n_rep = H // KV
        k = k[:, :, None].expand(B, KV, n_rep, T, hd).reshape(B, H, T, hd)
        v = v[:, :, None].expand(B, KV, n_rep, T, hd).reshape(B, H, T, hd)
        att = softmax32(torch.matmul(q, k.transpose(2, 3)) * hd ** -0.5 + mask)
        s[b + "attn.hook_pattern"] = att
        z = torch.matmul(att, v).transpose(1, 2).contiguous().reshape(B, T, -1)
        s[b + "attn.hook_z"] = z
        a = F.linear(z, w[p + "self_attn.o_proj.weight"])
        s[b + "hook_attn_out"] = a
        x = x + a
        s[b + "hook_resid_mid"] = x
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], c.eps)
        s[b + "ln2.hook_normalized"] = h
        if c.sparse[i]:
            m = sparse_block(model, h, i, s, b)
        else:  # Qwen3MoeMLP with intermediate_size
            g, u = F.linear(h, w[p + "mlp.gate_proj.weight"]), F.linear(h, w[p + "mlp.up_proj.weight"])
            s[b + "mlp.hook_pre"], s[b + "mlp.hook_pre_linear"] = g, u
            s[b + "mlp.hook_post"] = act(g) * u
            m = F.linear(s[b + "mlp.hook_post"], w[p + "mlp.down_proj.weight"])
        s[b + "hook_mlp_out"] = m
        x = x + m
        s[b + "hook_resid_post"] = x
        hidden.append(x)
    x = rms_norm(x, w["model.norm.weight"], c.eps)
    s["ln_final.hook_normalized"] = x
    hidden[-1] = x
    s["logits"] = F.linear(x, w["model.embed_tokens.weight"] if c.tied else w["lm_head.weight"])
    for k_, h_ in enumerate(hidden):
        s[f"hidden_states.{k_}"] = h_
    return s


def check_routing(model, name):
    """The folder must exercise routing: in every sparse layer tokens go to at least three different experts, and
    no token's choice is within MIN_ROUTING_GAP of a tie."""
    c = model.cfg
    for layer, sparse in enumerate(c.sparse):
        used = sorted(model.experts_used.get(layer, ()))
        if sparse and len(used) < min(3, c.experts):
            raise SystemExit(f"{name}: layer {layer} routes every token to experts {used}")
    if model.min_routing_gap < MIN_ROUTING_GAP:
        raise SystemExit(f"{name}: a token's expert choice is {model.min_routing_gap:.2g} from a tie; change the seed")


def _base(model_type, **kw):
    cfg = dict(model_type=model_type, vocab_size=256, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, hidden_act="silu", max_position_embeddings=128, initializer_range=0.02,
               attention_dropout=0.0, use_cache=True, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
               output_router_logits=False, router_aux_loss_coef=0.001)
    cfg.update(kw)
    return cfg


def specs(long_case):
    """torch_reference SPECS entries: name -> (config.json, dtype on disk, extra cases, transformers style)."""
    qwen = dict(intermediate_size=48, moe_intermediate_size=24, num_experts=4, num_experts_per_tok=2, head_dim=16,
                rms_norm_eps=1e-6, attention_bias=False, use_sliding_window=False, sliding_window=None,
                max_window_layers=2, rope_parameters={"rope_theta": 1000000.0, "rope_type": "default"})
    return {
        # norm_topk_prob true; layer 1 is dense (mlp_only_layers), layer 2 sparse by decoder_sparse_step 1
        "qwen3-moe-norm": (_base("qwen3_moe", **dict(qwen, num_hidden_layers=3, norm_topk_prob=True,
                                                     decoder_sparse_step=1, mlp_only_layers=[1])),
                           torch.float32, {}, 5),
        # norm_topk_prob false; decoder_sparse_step 2 makes layer 0 dense and layer 1 sparse; head_dim absent
        "qwen3-moe-topk-raw": (_base("qwen3_moe", **{k: v for k, v in qwen.items() if k != "head_dim"},
                                 norm_topk_prob=False, decoder_sparse_step=2, mlp_only_layers=[],
                                 tie_word_embeddings=True),
                           torch.float32, {}, 5),
        # top-2 of 4 with a sliding window of 8 on every layer, transformers-4 config
        "mixtral-window": (_base("mixtral", intermediate_size=40, num_local_experts=4, num_experts_per_tok=2,
                                 sliding_window=8, rms_norm_eps=1e-5, rope_theta=1000000.0, router_jitter_noise=0.0,
                                 num_key_value_heads=1),
                           torch.float32, long_case, 4),
        # bf16 on disk, no window, transformers-5 config
        "mixtral-bf16": (_base("mixtral", intermediate_size=40, num_local_experts=4, num_experts_per_tok=2,
                               sliding_window=None, rms_norm_eps=1e-5, router_jitter_noise=0.0,
                               rope_parameters={"rope_theta": 1000000.0, "rope_type": "default"}),
                         torch.bfloat16, {}, 5),
    }
