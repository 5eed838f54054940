"""An independent PyTorch re-implementation of Hugging Face transformers 5.17's eager forward pass.

Used where transformers itself cannot run: it recomputes, formula for formula, what HF's modeling code
(llama, mistral, qwen2, qwen3, gpt2, opt; gemma2 and gemma3 in gemma_ref.py; fp32, eager attention) computes, and captures the same sites that
tests/data/reference/make_reference.py hooks on the real HF modules (site names: tests/data/reference/README.md).
validate_oracle.py proves it reproduces HF's stored output on every shared reference before it may write data.

Needs only torch (1.13 works) and numpy; safetensors files are read and written with json + struct.

  python3 torch_reference.py generate OUT_DIR   # writes the tests/data/extra/<name>/ checkpoints + references
  python3 torch_reference.py capture MODEL_DIR  # prints every site's shape for input s0 (a quick look)

Where `import transformers` works (the GPU machine), `generate` also loads every folder it wrote with HF and
compares HF's hooked activations and greedy ids with its own, and fails on any difference.
"""
import json
import math
import os
import struct
import sys
import zlib

import torch
import torch.nn.functional as F

import olmo2_ref
import olmo_ref
import gemma_ref
import moe_ref  # qwen3_moe, mixtral
import gpt_neox_ref
import phi3_ref

FAMILIES = {"gpt_neox": gpt_neox_ref, "phi3": phi3_ref}  # re-implemented in their own files

# --------------------------------------------------------------------------------------------- safetensors

_ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
              "U8": torch.uint8, "I32": torch.int32}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}
_ST_SAME_SIZE_INT = {torch.float16: torch.int16, torch.bfloat16: torch.int16}


def read_safetensors(path):
    """Every tensor of a .safetensors file, in its stored dtype."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        raw = bytearray(blob[base + begin:base + end])
        if dtype in _ST_SAME_SIZE_INT:  # numpy has no bfloat16: move the raw 16-bit words through int16
            t = torch.frombuffer(raw, dtype=torch.int16).view(dtype) if raw else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors in their own dtypes, names sorted, header padded to 8 bytes like the safetensors library."""
    header, chunks, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if t.dtype in _ST_SAME_SIZE_INT:
            data = t.view(_ST_SAME_SIZE_INT[t.dtype]).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------- config

class Config:
    """The fields HF's config classes derive from config.json, with HF 5.17's defaults and back-compat rules."""

    def __init__(self, raw):
        self.raw = raw
        mt = self.model_type = raw["model_type"]
        g = raw.get
        if mt == "gpt2":
            self.hidden = g("n_embd", 768)
            self.layers = g("n_layer", 12)
            self.heads = g("n_head", 12)
            self.kv_heads = self.heads
            self.head_dim = self.hidden // self.heads
            self.inner = g("n_inner") or 4 * self.hidden
            self.act = g("activation_function", "gelu_new")
            self.eps = g("layer_norm_epsilon", 1e-5)
            self.scale_attn_weights = g("scale_attn_weights", True)
            self.scale_by_layer = g("scale_attn_by_inverse_layer_idx", False)
            self.tied = g("tie_word_embeddings", True)
        elif mt == "opt":
            self.hidden = g("hidden_size", 768)
            self.layers = g("num_hidden_layers", 12)
            self.heads = g("num_attention_heads", 12)
            self.kv_heads = self.heads
            self.head_dim = self.hidden // self.heads
            self.inner = g("ffn_dim", 3072)
            self.act = g("activation_function", "relu")
            self.proj_dim = g("word_embed_proj_dim") or self.hidden
            self.pre_ln = g("do_layer_norm_before", True)
            self.final_ln = self.pre_ln and not g("_remove_final_layer_norm", False)
            self.bias = g("enable_bias", True)
            self.tied = g("tie_word_embeddings", True)
        elif mt in ("llama", "mistral", "qwen2", "qwen3"):
            self.hidden = g("hidden_size")
            self.layers = g("num_hidden_layers")
            self.heads = g("num_attention_heads")
            self.kv_heads = g("num_key_value_heads") or self.heads
            self.head_dim = g("head_dim") or self.hidden // self.heads
            self.inner = g("intermediate_size")
            self.act = g("hidden_act", "silu")
            self.eps = g("rms_norm_eps", 1e-6)
            self.tied = g("tie_word_embeddings", mt == "qwen2")
            self.qkv_bias = {"llama": g("attention_bias", False), "mistral": False, "qwen2": True,
                             "qwen3": g("attention_bias", False)}[mt]
            self.o_bias = g("attention_bias", False) if mt in ("llama", "qwen3") else False
            self.mlp_bias = g("mlp_bias", False) if mt == "llama" else False
            self.qk_norm = mt == "qwen3"
            self.rope = rope_parameters(raw)
            self.layer_types = layer_types(raw, self.layers)
            self.window = g("sliding_window") if any(t == "sliding_attention" for t in self.layer_types) else None
        elif mt == "olmo2":
            olmo2_ref.configure(self, raw, rope_parameters(raw))
        elif mt == "olmo":
            olmo_ref.configure(self, raw, rope_parameters(raw))
        elif mt in gemma_ref.MODEL_TYPES:
            gemma_ref.configure(self, raw, rope_parameters)
        elif mt in moe_ref.MODEL_TYPES:
            moe_ref.configure(self, raw)
        elif mt in FAMILIES:
            FAMILIES[mt].configure(self, raw)
        else:
            raise ValueError(f"unknown model_type {mt!r}")
        self.vocab = gemma_ref.text_config(raw)["vocab_size"] if mt in gemma_ref.MODEL_TYPES else g("vocab_size")
        # make_reference.py computes references of half-precision checkpoints on a model cast to that dtype and
        # back to fp32; Module.to() casts the rotary inv_freq buffer too, so HF's cos/sin come from a rounded one
        self.buffer_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(
            g("dtype", g("torch_dtype")), torch.float32)


def rope_parameters(raw):
    """transformers-5 `rope_parameters`, or transformers-4 `rope_theta` + `rope_scaling` (`type` or `rope_type`)."""
    if raw.get("rope_parameters"):
        rp = dict(raw["rope_parameters"])
    else:
        rp = dict(raw.get("rope_scaling") or {})
        rp["rope_theta"] = raw.get("rope_theta", 10000.0)
    if "rope_type" not in rp:
        rp["rope_type"] = rp.pop("type", "default")
    rp.pop("type", None)
    return rp


def layer_types(raw, n):
    """Which layers attend through a sliding window, as HF's config classes decide it."""
    mt = raw["model_type"]
    if raw.get("layer_types"):
        return list(raw["layer_types"])
    if mt == "mistral":  # MistralModel windows every layer whenever config.sliding_window is set
        return ["sliding_attention" if raw.get("sliding_window") is not None else "full_attention"] * n
    if mt in ("qwen2", "qwen3"):  # sliding_window counts only with use_sliding_window, from max_window_layers on
        sw = raw.get("sliding_window") if raw.get("use_sliding_window", False) else None
        mwl = raw.get("max_window_layers", 28)
        return ["sliding_attention" if sw is not None and i >= mwl else "full_attention" for i in range(n)]
    return ["full_attention"] * n


def inv_freq_for(rp, head_dim):
    """modeling_rope_utils: default, linear and llama3 inverse frequencies (float32, HF's exact expressions)."""
    base = rp["rope_theta"]
    dim = int(head_dim * rp.get("partial_rotary_factor", 1.0))
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
    kind = rp["rope_type"]
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / rp["factor"]
    if kind == "llama3":
        factor = rp["factor"]
        low_freq_factor = rp["low_freq_factor"]
        high_freq_factor = rp["high_freq_factor"]
        old_context_len = rp["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    raise ValueError(f"rope_type {kind!r} is not re-implemented here")


# --------------------------------------------------------------------------------------------- ops

def act_fn(name):
    if name == "silu":
        return F.silu
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    if name == "gelu_pytorch_tanh":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "gelu_new":  # NewGELUActivation
        return lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    raise ValueError(f"activation {name!r} is not re-implemented here")


def rms_norm(x, w, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def linear(x, w, b=None):
    return F.linear(x, w, b)


def conv1d(x, w, b):  # GPT-2's Conv1D keeps its weight as [in, out]
    size_out = x.size()[:-1] + (w.size(-1),)
    return torch.addmm(b, x.view(-1, x.size(-1)), w).view(size_out)


def additive_mask(T, window=None):
    """masking_utils: causal (kv <= q), and with a window W also kv > q - W (W keys, the query's own included);
    eager attention adds finfo.min where a key is masked."""
    q = torch.arange(T)[:, None]
    kv = torch.arange(T)[None, :]
    keep = kv <= q
    if window is not None:
        keep = keep & (kv > q - window)
    return torch.where(keep, torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))[None, None]


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def softmax32(w):
    return F.softmax(w, dim=-1, dtype=torch.float32)


# --------------------------------------------------------------------------------------------- model

class Model:
    """A checkpoint folder: config.json, generation_config.json, model.safetensors; weights upcast to fp32."""

    def __init__(self, folder, config_changes=None):
        self.folder = folder
        raw = json.load(open(os.path.join(folder, "config.json")))
        raw.update(config_changes or {})
        self.cfg = Config(raw)
        gpath = os.path.join(folder, "generation_config.json")
        self.gen_cfg = json.load(open(gpath)) if os.path.exists(gpath) else {}
        self.w = {k: v.float() for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()}

    def eos_ids(self):
        eos = self.gen_cfg.get("eos_token_id", self.cfg.raw.get("eos_token_id"))
        if eos is None:
            return set()
        return set(eos) if isinstance(eos, list) else {eos}

    def forward(self, ids, capture=True, prefill=None):
        """Returns {site: fp32 tensor without batch dim}; with capture=False only `logits`. `prefill`: the
        sequence's first call had that many tokens, each later one a call of its own (generation with a cache)."""
        ids = torch.tensor([ids], dtype=torch.int64)
        mt = self.cfg.model_type
        with torch.no_grad():
            if mt == "gpt2":
                sites = self._gpt2(ids)
            elif mt == "opt":
                sites = self._opt(ids)
            elif mt == "olmo2":
                sites = olmo2_ref.forward(self, ids, sys.modules[__name__])
            elif mt == "olmo":
                sites = olmo_ref.forward(self, ids, sys.modules[__name__])
            elif mt in gemma_ref.MODEL_TYPES:
                sites = gemma_ref.forward(self, ids, sys.modules[__name__])
            elif mt in moe_ref.MODEL_TYPES:
                sites = moe_ref.forward(self, ids)
            elif mt in FAMILIES:
                sites = FAMILIES[mt].forward(sys.modules[__name__], self, ids, prefill)
            else:
                sites = self._llama_family(ids)
        if not capture:
            return {"logits": sites["logits"]}
        return {k: v[0] if v.dim() > 0 and v.shape[0] == 1 else v for k, v in sites.items()}

    # llama, mistral, qwen2, qwen3 share LlamaModel's structure
    def _llama_family(self, ids):
        c, w, s = self.cfg, self.w, {}
        B, T = ids.shape
        H, KV, hd = c.heads, c.kv_heads, c.head_dim
        x = F.embedding(ids, w["model.embed_tokens.weight"])
        s["hook_embed"] = x
        hidden = [x]
        pos = torch.arange(T)[None, :]
        inv_freq = inv_freq_for(c.rope, hd).to(c.buffer_dtype).float()
        freqs = (inv_freq[None, :, None].float() @ pos[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # attention_scaling is 1.0 for these rope types
        masks = {"full_attention": additive_mask(T), "sliding_attention": additive_mask(T, c.window)}
        scaling = hd ** -0.5
        act = act_fn(c.act)
        for i in range(c.layers):
            p, b = f"model.layers.{i}.", f"blocks.{i}."
            bias = lambda n: w.get(p + n + ".bias")  # noqa: E731
            s[b + "hook_resid_pre"] = x
            h = rms_norm(x, w[p + "input_layernorm.weight"], c.eps)
            s[b + "ln1.hook_normalized"] = h
            q = linear(h, w[p + "self_attn.q_proj.weight"], bias("self_attn.q_proj"))
            k = linear(h, w[p + "self_attn.k_proj.weight"], bias("self_attn.k_proj"))
            v = linear(h, w[p + "self_attn.v_proj.weight"], bias("self_attn.v_proj"))
            q, k, v = q.view(B, T, -1, hd), k.view(B, T, -1, hd), v.view(B, T, -1, hd)
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
            att = torch.matmul(q, k.transpose(2, 3)) * scaling
            att = att + masks[c.layer_types[i]]
            att = softmax32(att)
            s[b + "attn.hook_pattern"] = att
            z = torch.matmul(att, v).transpose(1, 2).contiguous().reshape(B, T, -1)
            s[b + "attn.hook_z"] = z
            a = linear(z, w[p + "self_attn.o_proj.weight"], bias("self_attn.o_proj"))
            s[b + "hook_attn_out"] = a
            x = x + a
            s[b + "hook_resid_mid"] = x
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], c.eps)
            s[b + "ln2.hook_normalized"] = h
            g = linear(h, w[p + "mlp.gate_proj.weight"], bias("mlp.gate_proj"))
            u = linear(h, w[p + "mlp.up_proj.weight"], bias("mlp.up_proj"))
            s[b + "mlp.hook_pre"], s[b + "mlp.hook_pre_linear"] = g, u
            m = act(g) * u
            s[b + "mlp.hook_post"] = m
            d = linear(m, w[p + "mlp.down_proj.weight"], bias("mlp.down_proj"))
            s[b + "hook_mlp_out"] = d
            x = x + d
            s[b + "hook_resid_post"] = x
            hidden.append(x)
        x = rms_norm(x, w["model.norm.weight"], c.eps)
        s["ln_final.hook_normalized"] = x
        hidden[-1] = x  # HF's last hidden state is the final norm's output
        head = w["model.embed_tokens.weight"] if c.tied else w["lm_head.weight"]
        s["logits"] = linear(x, head)
        for k_, h_ in enumerate(hidden):
            s[f"hidden_states.{k_}"] = h_
        return s

    def _gpt2(self, ids):
        c, w, s = self.cfg, self.w, {}
        B, T = ids.shape
        hd, d = c.head_dim, c.hidden
        e = F.embedding(ids, w["transformer.wte.weight"])
        pe = F.embedding(torch.arange(T)[None, :], w["transformer.wpe.weight"])
        s["hook_embed"], s["hook_pos_embed"] = e, pe
        x = e + pe
        hidden = [x]
        mask = additive_mask(T)
        act = act_fn(c.act)
        for i in range(c.layers):
            p, b = f"transformer.h.{i}.", f"blocks.{i}."
            s[b + "hook_resid_pre"] = x
            h = F.layer_norm(x, (d,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], c.eps)
            s[b + "ln1.hook_normalized"] = h
            qkv = conv1d(h, w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"])
            q, k, v = qkv.split(d, dim=2)
            q, k, v = (t.view(B, T, -1, hd).transpose(1, 2) for t in (q, k, v))
            att = torch.matmul(q, k.transpose(-1, -2))
            if c.scale_attn_weights:
                att = att / torch.full([], v.size(-1) ** 0.5, dtype=att.dtype)
            if c.scale_by_layer:
                att = att / float(i + 1)
            att = softmax32(att + mask)
            s[b + "attn.hook_pattern"] = att
            z = torch.matmul(att, v).transpose(1, 2).contiguous().reshape(B, T, -1)
            s[b + "attn.hook_z"] = z
            a = conv1d(z, w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"])
            s[b + "hook_attn_out"] = a
            x = a + x
            s[b + "hook_resid_mid"] = x
            h = F.layer_norm(x, (d,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], c.eps)
            s[b + "ln2.hook_normalized"] = h
            pre = conv1d(h, w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"])
            s[b + "mlp.hook_pre"] = pre
            post = act(pre)
            s[b + "mlp.hook_post"] = post
            m = conv1d(post, w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"])
            s[b + "hook_mlp_out"] = m
            x = x + m
            s[b + "hook_resid_post"] = x
            hidden.append(x)
        x = F.layer_norm(x, (d,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], c.eps)
        s["ln_final.hook_normalized"] = x
        hidden[-1] = x
        s["logits"] = linear(x, w["transformer.wte.weight"] if c.tied else w["lm_head.weight"])
        for k_, h_ in enumerate(hidden):
            s[f"hidden_states.{k_}"] = h_
        return s

    def _opt(self, ids):
        """OPTDecoder. Sites follow make_reference.py's module hooks: ln1/ln2 are the outputs of
        self_attn_layer_norm / final_layer_norm and resid_mid the input of final_layer_norm, wherever OPT calls
        them (after the residual add when do_layer_norm_before is false, as in opt-350m)."""
        c, w, s = self.cfg, self.w, {}
        B, T = ids.shape
        H, hd, d = c.heads, c.head_dim, c.hidden
        P = "model.decoder."
        bias = lambda n: w.get(n + ".bias") if c.bias else None  # noqa: E731
        e = F.embedding(ids, w[P + "embed_tokens.weight"])
        s["hook_embed"] = e
        mask2d = torch.ones(B, T)
        position_ids = (torch.cumsum(mask2d, dim=1) * mask2d - 1).long()
        pe = F.embedding(position_ids + 2, w[P + "embed_positions.weight"])
        s["hook_pos_embed"] = pe
        if c.proj_dim != c.hidden:
            e = linear(e, w[P + "project_in.weight"])
        x = e + pe
        hidden = []
        mask = additive_mask(T)
        scaling = hd ** -0.5
        act = act_fn(c.act)
        ln = lambda t, n: F.layer_norm(t, (d,), w[n + ".weight"], w[n + ".bias"], 1e-5)  # noqa: E731
        for i in range(c.layers):
            p, b = f"{P}layers.{i}.", f"blocks.{i}."
            hidden.append(x)
            s[b + "hook_resid_pre"] = x
            residual = x
            h = x
            if c.pre_ln:
                h = ln(x, p + "self_attn_layer_norm")
                s[b + "ln1.hook_normalized"] = h
            q_lin = linear(h, w[p + "self_attn.q_proj.weight"], bias(p + "self_attn.q_proj"))
            k = linear(h, w[p + "self_attn.k_proj.weight"], bias(p + "self_attn.k_proj"))
            v = linear(h, w[p + "self_attn.v_proj.weight"], bias(p + "self_attn.v_proj"))
            s[b + "attn.hook_q"], s[b + "attn.hook_k"], s[b + "attn.hook_v"] = q_lin, k, v
            q = (q_lin * scaling).view(B, -1, H, hd).transpose(1, 2)
            k = k.view(B, -1, H, hd).transpose(1, 2)
            v = v.view(B, -1, H, hd).transpose(1, 2)
            att = torch.matmul(q, k.transpose(-1, -2)) * 1.0
            att = softmax32(att + mask)
            s[b + "attn.hook_pattern"] = att
            z = torch.matmul(att, v).transpose(1, 2).contiguous().reshape(B, T, -1)
            s[b + "attn.hook_z"] = z
            a = linear(z, w[p + "self_attn.out_proj.weight"], bias(p + "self_attn.out_proj"))
            s[b + "hook_attn_out"] = a
            x = residual + a
            if not c.pre_ln:
                x = ln(x, p + "self_attn_layer_norm")
                s[b + "ln1.hook_normalized"] = x
            shape = x.shape
            x = x.reshape(-1, x.size(-1))
            residual = x
            h = x
            if c.pre_ln:
                s[b + "hook_resid_mid"] = x
                h = ln(x, p + "final_layer_norm")
                s[b + "ln2.hook_normalized"] = h
            pre = linear(h, w[p + "fc1.weight"], bias(p + "fc1"))
            s[b + "mlp.hook_pre"] = pre
            post = act(pre)
            s[b + "mlp.hook_post"] = post
            m = linear(post, w[p + "fc2.weight"], bias(p + "fc2"))
            s[b + "hook_mlp_out"] = m
            x = (residual + m).view(shape)
            if not c.pre_ln:
                s[b + "hook_resid_mid"] = x
                x = ln(x, p + "final_layer_norm")
                s[b + "ln2.hook_normalized"] = x
            s[b + "hook_resid_post"] = x
        if c.final_ln:
            x = ln(x, P + "final_layer_norm")
            s["ln_final.hook_normalized"] = x
        if c.proj_dim != c.hidden:
            x = linear(x, w[P + "project_out.weight"])
        hidden.append(x)
        s["logits"] = linear(x, w[P + "embed_tokens.weight"] if c.tied else w["lm_head.weight"])
        for k_, h_ in enumerate(hidden):
            s[f"hidden_states.{k_}"] = h_
        return s

    def greedy(self, ids, max_new_tokens):
        """model.generate(do_sample=False): argmax of the last position (first index on ties), stopping after
        an EOS id of generation_config. Recomputes the whole prefix each step instead of using a KV cache.
        Also returns the smallest top-1/top-2 logit gap seen, so callers can reject near-ties."""
        ids = list(ids)
        prompt = len(ids)
        eos = self.eos_ids()
        min_gap = float("inf")
        for _ in range(max_new_tokens):
            last = self.forward(ids, capture=False, prefill=prompt)["logits"][0, -1]
            top2 = torch.topk(last, 2).values
            min_gap = min(min_gap, float(top2[0] - top2[1]))
            nxt = int(torch.argmax(last))
            ids.append(nxt)
            if nxt in eos:
                break
        return ids, min_gap


def reference_tensors(model, cases, gen_case="s0", gen_new=10):
    """{`<case>/<site>`: fp32, `<case>/input_ids`, `gen/input_ids`, `gen/output_ids`} like make_reference.py."""
    out = {}
    for cname, ids in cases.items():
        out[f"{cname}/input_ids"] = torch.tensor(ids, dtype=torch.int64)
        for site, t in model.forward(ids).items():
            out[f"{cname}/{site}"] = t.float().contiguous()
    gen, gap = model.greedy(cases[gen_case], gen_new)
    out["gen/input_ids"] = torch.tensor(cases[gen_case], dtype=torch.int64)
    out["gen/output_ids"] = torch.tensor(gen, dtype=torch.int64)
    return out, gap


# --------------------------------------------------------------------------------------------- new checkpoints

V = 256
CASES = {"s0": [1, 20, 200, 255, 7, 7], "s1": [(i * 29 + 3) % V for i in range(19)]}
LONG = {"long": [(i * 37 + 11) % V for i in range(40)]}


def _llama_like(model_type, **kw):
    cfg = dict(model_type=model_type, vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, hidden_act="silu", max_position_embeddings=128,
               rms_norm_eps=1e-6, initializer_range=0.02, attention_dropout=0.0, use_cache=True,
               bos_token_id=1, eos_token_id=2, pad_token_id=None, tie_word_embeddings=False)
    cfg.update(kw)
    return cfg


LLAMA_EXTRA = dict(attention_bias=False, mlp_bias=False, pretraining_tp=1)

# name: (config.json, dtype on disk, extra cases, transformers style of config.json)
SPECS = {
    "llama3-rope": (_llama_like("llama", **LLAMA_EXTRA, hidden_size=64, intermediate_size=96, head_dim=16,
                                rope_theta=10000.0,
                                rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                              "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
                    torch.float32, LONG, 4),
    "llama-linear-rope": (_llama_like("llama", **LLAMA_EXTRA, head_dim=8, rope_theta=10000.0,
                                      rope_scaling={"type": "linear", "factor": 2.0}),
                          torch.float32, {}, 4),
    "llama-headdim": (_llama_like("llama", **LLAMA_EXTRA, head_dim=12, rope_theta=10000.0, rope_scaling=None),
                      torch.float32, {}, 4),
    "llama-bias": (_llama_like("llama", **dict(LLAMA_EXTRA, attention_bias=True, mlp_bias=True), head_dim=8,
                               rope_theta=500000.0, rope_scaling=None, tie_word_embeddings=True),
                   torch.float32, {}, 4),
    "mistral-window": (_llama_like("mistral", num_key_value_heads=1, head_dim=8, sliding_window=8,
                                   rms_norm_eps=1e-5,
                                   rope_parameters={"rope_theta": 1000000.0, "rope_type": "default"}),
                       torch.bfloat16, LONG, 5),
    "qwen2-window": (_llama_like("qwen2", rope_theta=1000000.0, rope_scaling=None, use_sliding_window=True,
                                 sliding_window=8, max_window_layers=1, tie_word_embeddings=True,
                                 bos_token_id=3, eos_token_id=4),
                     torch.float32, LONG, 4),
    "qwen3-bf16": (_llama_like("qwen3", head_dim=16, attention_bias=False, use_sliding_window=False,
                               sliding_window=None, max_window_layers=2,
                               layer_types=["full_attention", "full_attention"],
                               rope_parameters={"rope_theta": 1000000.0, "rope_type": "default"},
                               bos_token_id=3, eos_token_id=4),
                   torch.bfloat16, {}, 5),
    "opt-350m-style": (dict(model_type="opt", vocab_size=V, hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=64, word_embed_proj_dim=16,
                            do_layer_norm_before=False, activation_function="relu", enable_bias=True,
                            _remove_final_layer_norm=False, layer_norm_elementwise_affine=True,
                            attention_dropout=0.0, dropout=0.1, layerdrop=0.0, init_std=0.02, use_cache=True,
                            tie_word_embeddings=True, pad_token_id=1, bos_token_id=2, eos_token_id=2),
                       torch.float32, {}, 5),
    "gpt2-gelu": (dict(model_type="gpt2", vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                       n_inner=None, activation_function="gelu", layer_norm_epsilon=1e-5,
                       scale_attn_weights=True, scale_attn_by_inverse_layer_idx=True,
                       reorder_and_upcast_attn=False, attn_pdrop=0.1, embd_pdrop=0.1, resid_pdrop=0.1,
                       initializer_range=0.02, use_cache=True, tie_word_embeddings=True,
                       bos_token_id=0, eos_token_id=0, pad_token_id=None),
                  torch.float16, {}, 5),
    **olmo2_ref.SPECS,
    **olmo_ref.SPECS,
    **gemma_ref.specs(V, LONG),
    "gpt-neox-parallel": (dict(model_type="gpt_neox", vocab_size=V, hidden_size=64, intermediate_size=128,
                               num_hidden_layers=2, num_attention_heads=4, hidden_act="gelu", rotary_pct=0.25,
                               rotary_emb_base=10000, max_position_embeddings=128, layer_norm_eps=1e-5,
                               use_parallel_residual=True, attention_bias=True, tie_word_embeddings=False,
                               initializer_range=0.02, use_cache=True, bos_token_id=0, eos_token_id=0),
                          torch.float32, {}, 4),
    "gpt-neox-sequential": (dict(model_type="gpt_neox", vocab_size=V, hidden_size=32, intermediate_size=96,
                                 num_hidden_layers=3, num_attention_heads=2, hidden_act="gelu",
                                 rope_parameters={"rope_type": "default", "rope_theta": 1000.0,
                                                  "partial_rotary_factor": 0.5},
                                 max_position_embeddings=128, layer_norm_eps=1e-6, use_parallel_residual=False,
                                 attention_bias=False, tie_word_embeddings=True, initializer_range=0.02,
                                 use_cache=True, bos_token_id=0, eos_token_id=0),
                            torch.float32, {}, 5),
    "phi3-partial-window": (dict(model_type="phi3", vocab_size=V, hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                 hidden_act="silu", max_position_embeddings=128,
                                 original_max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=10000.0,
                                 rope_scaling=None, partial_rotary_factor=0.5, sliding_window=8,
                                 tie_word_embeddings=False, initializer_range=0.02, use_cache=True,
                                 bos_token_id=1, eos_token_id=2, pad_token_id=None),
                            torch.float32, LONG, 4),
    "phi3-longrope": (dict(model_type="phi3", vocab_size=V, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, hidden_act="silu",
                           max_position_embeddings=80, original_max_position_embeddings=20, rms_norm_eps=1e-5,
                           rope_theta=10000.0, partial_rotary_factor=0.75,
                           rope_scaling={"type": "longrope", "short_factor": [1.0, 1.02, 1.1, 1.3, 1.6, 2.0],
                                         "long_factor": [1.0, 1.5, 3.0, 6.0, 12.0, 24.0]},
                           sliding_window=None, tie_word_embeddings=False, initializer_range=0.02, use_cache=True,
                           bos_token_id=1, eos_token_id=2, pad_token_id=None),
                      torch.float32, LONG, 4),
}
# The prompt of the `gen` case when not s0: phi3-longrope generates from s1 (19 tokens) past its
# original_max_position_embeddings (20), so later steps use the long table while the prompt's cached keys keep
# the short one.
GEN_CASE = {"phi3-longrope": "s1"}

SPECS.update(moe_ref.specs(LONG))

ARCH = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
        "qwen3": "Qwen3ForCausalLM", "opt": "OPTForCausalLM", "gpt2": "GPT2LMHeadModel", **olmo2_ref.ARCH,
        **olmo_ref.ARCH, **gemma_ref.ARCH, **moe_ref.ARCH, "gpt_neox": "GPTNeoXForCausalLM", "phi3": "Phi3ForCausalLM"}


def weight_shapes(cfg):
    """HF tensor names and shapes of a checkpoint, in the order of HF's named_parameters (tied heads omitted,
    as save_pretrained does)."""
    if cfg["model_type"] in moe_ref.MODEL_TYPES:
        return moe_ref.weight_shapes(cfg)
    c = Config(cfg)
    if c.model_type in gemma_ref.MODEL_TYPES:
        return gemma_ref.weight_shapes(c, cfg)
    d, L, out = c.hidden, c.layers, []
    if c.model_type in FAMILIES:
        return FAMILIES[c.model_type].weight_shapes(c)
    if c.model_type == "gpt2":
        out += [("transformer.wte.weight", [c.vocab, d]), ("transformer.wpe.weight", [cfg["n_positions"], d])]
        for i in range(L):
            p = f"transformer.h.{i}."
            out += [(p + "ln_1.weight", [d]), (p + "ln_1.bias", [d]),
                    (p + "attn.c_attn.weight", [d, 3 * d]), (p + "attn.c_attn.bias", [3 * d]),
                    (p + "attn.c_proj.weight", [d, d]), (p + "attn.c_proj.bias", [d]),
                    (p + "ln_2.weight", [d]), (p + "ln_2.bias", [d]),
                    (p + "mlp.c_fc.weight", [d, c.inner]), (p + "mlp.c_fc.bias", [c.inner]),
                    (p + "mlp.c_proj.weight", [c.inner, d]), (p + "mlp.c_proj.bias", [d])]
        out += [("transformer.ln_f.weight", [d]), ("transformer.ln_f.bias", [d])]
    elif c.model_type == "olmo2":
        out += olmo2_ref.weight_shapes(c)
    elif c.model_type == "olmo":
        out += olmo_ref.weight_shapes(c)
    elif c.model_type == "opt":
        P = "model.decoder."
        out += [(P + "embed_tokens.weight", [c.vocab, c.proj_dim]),
                (P + "embed_positions.weight", [cfg["max_position_embeddings"] + 2, d])]
        if c.proj_dim != d:
            out += [(P + "project_out.weight", [c.proj_dim, d]), (P + "project_in.weight", [d, c.proj_dim])]
        if c.final_ln:
            out += [(P + "final_layer_norm.weight", [d]), (P + "final_layer_norm.bias", [d])]
        for i in range(L):
            p = f"{P}layers.{i}."
            for n in ("k_proj", "v_proj", "q_proj", "out_proj"):
                out += [(p + f"self_attn.{n}.weight", [d, d]), (p + f"self_attn.{n}.bias", [d])]
            out += [(p + "self_attn_layer_norm.weight", [d]), (p + "self_attn_layer_norm.bias", [d]),
                    (p + "fc1.weight", [c.inner, d]), (p + "fc1.bias", [c.inner]),
                    (p + "fc2.weight", [d, c.inner]), (p + "fc2.bias", [d]),
                    (p + "final_layer_norm.weight", [d]), (p + "final_layer_norm.bias", [d])]
    else:
        hd, H, KV = c.head_dim, c.heads, c.kv_heads
        out += [("model.embed_tokens.weight", [c.vocab, d])]
        for i in range(L):
            p = f"model.layers.{i}."
            for n, rows in (("q_proj", H * hd), ("k_proj", KV * hd), ("v_proj", KV * hd)):
                out += [(p + f"self_attn.{n}.weight", [rows, d])]
                if c.qkv_bias:
                    out += [(p + f"self_attn.{n}.bias", [rows])]
            out += [(p + "self_attn.o_proj.weight", [d, H * hd])]
            if c.o_bias:
                out += [(p + "self_attn.o_proj.bias", [d])]
            if c.qk_norm:
                out += [(p + "self_attn.q_norm.weight", [hd]), (p + "self_attn.k_norm.weight", [hd])]
            for n, shape in (("gate_proj", [c.inner, d]), ("up_proj", [c.inner, d]), ("down_proj", [d, c.inner])):
                out += [(p + f"mlp.{n}.weight", shape)]
                if c.mlp_bias:
                    out += [(p + f"mlp.{n}.bias", [shape[0]])]
            out += [(p + "input_layernorm.weight", [d]), (p + "post_attention_layernorm.weight", [d])]
        out += [("model.norm.weight", [d])]
        if not c.tied:
            out += [("lm_head.weight", [c.vocab, d])]
    return out


def perturbed_weights(name, cfg):
    """make_reference.py's perturb(): 1-D weights ~ 1 + N(0, 0.1), 1-D biases ~ N(0, 0.1), matrices ~ N(0, 0.08);
    seeded by the folder name so every folder regenerates identically on its own."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    out = {}
    for pn, shape in weight_shapes(cfg):
        if len(shape) == 1:
            out[pn] = torch.randn(shape, generator=gen) * 0.1 + (1.0 if pn.endswith("weight") else 0.0)
        else:
            out[pn] = torch.randn(shape, generator=gen) * 0.08
    return out


def hub_config(cfg, dtype, style):
    """config.json as save_pretrained writes it: architectures, dtype, transformers_version; transformers-4 style
    files carry torch_dtype and rope_theta/rope_scaling, transformers-5 style ones dtype and rope_parameters."""
    out = dict(cfg)
    out["architectures"] = [ARCH[cfg["model_type"]]]
    dname = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}[dtype]
    if style == 4:
        out["torch_dtype"] = dname
        out["transformers_version"] = "4.45.2"
    else:
        out["dtype"] = dname
        out["transformers_version"] = "5.17.0"
    return out


def write_folder(out_dir, name):
    cfg, dtype, extra, style = SPECS[name]
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    conf = hub_config(cfg, dtype, style)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
        f.write("\n")
    gen_cfg = {"_from_model_config": True, "bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"],
               "output_attentions": False, "output_hidden_states": False, "transformers_version": "5.17.0",
               "use_cache": True}
    if cfg.get("pad_token_id") is not None:
        gen_cfg["pad_token_id"] = cfg["pad_token_id"]
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump(gen_cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    weights = {k: v.to(dtype) for k, v in perturbed_weights(name, cfg).items()}
    write_safetensors(os.path.join(d, "model.safetensors"), weights, {"format": "pt"})
    model = Model(d)  # computes from what is on disk: fp16/bf16 weights upcast to fp32, as HF does
    cases = dict(CASES, **extra)
    tensors, gap = reference_tensors(model, cases, GEN_CASE.get(name, "s0"))
    if cfg["model_type"] in moe_ref.MODEL_TYPES:
        moe_ref.check_routing(model, name)
    write_safetensors(os.path.join(d, "reference.safetensors"), tensors)
    return d, gap


# --------------------------------------------------------------------------------------------- HF cross-check

def hf_cross_check(folder, tol=1e-5):
    """Only where transformers is installed: HF's own activations (hooked as make_reference.py hooks them) and
    greedy ids for the folder's cases, compared with the stored reference. Returns the worst relative error."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    cast = Config(json.load(open(os.path.join(folder, "config.json")))).buffer_dtype
    if cast != torch.float32:  # as make_reference.py: the fp32 model went to half precision and back
        model = model.to(cast).to(torch.float32)
    ref = read_safetensors(os.path.join(folder, "reference.safetensors"))
    cases = sorted({k.split("/")[0] for k in ref if k.endswith("/input_ids") and not k.startswith("gen/")})
    base = gemma_ref.text_decoder(model.base_model)
    layers = list(base.layers) if hasattr(base, "layers") else list(base.h) if hasattr(base, "h") \
        else list(base.decoder.layers)

    def first(obj, *names):
        for n in names:
            if hasattr(obj, n) and getattr(obj, n) is not None:
                return getattr(obj, n)
        return None

    cap = {}

    def keep(key, t):
        t = t.detach()
        cap[key] = (t[0] if t.shape[0] == 1 else t).float().clone()

    def post(key):
        return lambda m, a, k, o: keep(key, o[0] if isinstance(o, tuple) else o)

    def pre(key):
        return lambda m, a, k: keep(key, a[0] if a else k["hidden_states"])

    hooks = []
    reg = lambda mod, kind, key: hooks.append(  # noqa: E731
        mod.register_forward_hook(post(key), with_kwargs=True) if kind == "post"
        else mod.register_forward_pre_hook(pre(key), with_kwargs=True))
    family = FAMILIES.get(model.config.model_type)
    if family is not None:  # its own module names and fused projections
        family.hf_hooks(model, reg, keep, hooks)
    else:
        emb = first(base, "embed_tokens", "wte") or base.decoder.embed_tokens
        reg(emb, "post", "hook_embed")
        pos = first(base, "wpe") or (base.decoder.embed_positions if hasattr(base, "decoder") else None)
        if pos is not None:
            reg(pos, "post", "hook_pos_embed")
        for i, L in enumerate(layers):
            b = f"blocks.{i}."
            attn = first(L, "self_attn", "attn")
            reg(L, "pre", b + "hook_resid_pre")
            reg(attn, "post", b + "hook_attn_out")
            if model.config.model_type == "olmo2":  # post-norms only
                olmo2_ref.hf_hooks(L, b, reg)
            else:
                ln1 = first(L, "input_layernorm", "ln_1", "self_attn_layer_norm")
                ln2 = first(L, "post_attention_layernorm", "ln_2", "final_layer_norm")
                reg(ln1, "post", b + "ln1.hook_normalized")
                reg(ln2, "pre", b + "hook_resid_mid")
                reg(ln2, "post", b + "ln2.hook_normalized")
            reg(L, "post", b + "hook_resid_post")
            if hasattr(attn, "q_proj"):
                reg(first(attn, "q_norm") or attn.q_proj, "post", b + "attn.hook_q")
                reg(first(attn, "k_norm") or attn.k_proj, "post", b + "attn.hook_k")
                reg(attn.v_proj, "post", b + "attn.hook_v")
                if model.config.model_type == "olmo":  # q/k/v after clip_qkv's in-place clamp
                    olmo_ref.hf_hooks(attn, b, keep, hooks)
            reg(first(attn, "o_proj", "out_proj", "c_proj"), "pre", b + "attn.hook_z")
            mlp = first(L, "mlp", "block_sparse_moe")
            if mlp is not None and hasattr(mlp, "experts"):
                hooks.append(moe_ref.hook_hf_router(mlp.gate, b, keep, model.config))
                reg(mlp, "post", b + "hook_mlp_out")
            elif mlp is not None and hasattr(mlp, "gate_proj"):
                reg(mlp.gate_proj, "post", b + "mlp.hook_pre")
                reg(mlp.up_proj, "post", b + "mlp.hook_pre_linear")
                reg(mlp.down_proj, "pre", b + "mlp.hook_post")
                reg(mlp, "post", b + "hook_mlp_out")
            elif mlp is not None:
                reg(mlp.c_fc, "post", b + "mlp.hook_pre")
                reg(mlp.c_proj, "pre", b + "mlp.hook_post")
                reg(mlp, "post", b + "hook_mlp_out")
            else:
                reg(L.fc1, "post", b + "mlp.hook_pre")
                reg(L.fc2, "pre", b + "mlp.hook_post")
                reg(L.fc2, "post", b + "hook_mlp_out")
        fin = first(base, "norm", "ln_f") or (base.decoder.final_layer_norm if hasattr(base, "decoder") else None)
        if fin is not None:
            reg(fin, "post", "ln_final.hook_normalized")
        gemma_ref.register_hf_hooks(layers, reg)
    worst = 0.0
    with torch.no_grad():
        for cname in cases:
            cap.clear()
            x = ref[f"{cname}/input_ids"][None]
            out = model(input_ids=x, output_hidden_states=True, output_attentions=True)
            got = dict(cap)
            for k, h in enumerate(out.hidden_states):
                got[f"hidden_states.{k}"] = h[0].float()
            for i, a in enumerate(out.attentions):
                got[f"blocks.{i}.attn.hook_pattern"] = a[0].float()
            got["logits"] = out.logits[0].float()
            want = {k.split("/", 1)[1]: v for k, v in ref.items()
                    if k.startswith(cname + "/") and not k.endswith("/input_ids")}
            if set(got) != set(want):
                raise AssertionError(f"{folder} {cname}: HF sites differ: {sorted(set(got) ^ set(want))}")
            for k, v in want.items():
                err = float((got[k] - v).abs().max()) / max(float(v.abs().max()), 1e-30)
                worst = max(worst, err)
                if err > tol:
                    raise AssertionError(f"{folder} {cname}/{k}: HF differs from the oracle by {err:.3g} (relative)")
        x = ref["gen/input_ids"][None]
        n = ref["gen/output_ids"].numel() - x.shape[1]
        g = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=10, do_sample=False,
                           pad_token_id=0)
        if g[0].tolist()[:x.shape[1] + n] != ref["gen/output_ids"].tolist():
            raise AssertionError(f"{folder}: HF greedy ids {g[0].tolist()} != {ref['gen/output_ids'].tolist()}")
    for h in hooks:
        h.remove()
    return worst


def transformers_available():
    try:
        import transformers  # noqa: F401
        return True
    except ImportError:
        return False


def main(argv):
    if len(argv) == 2 and argv[0] == "generate":
        out_dir = argv[1]
        os.makedirs(out_dir, exist_ok=True)
        for name in SPECS:
            d, gap = write_folder(out_dir, name)
            size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
            print(f"{name}: {size / 1024:.0f} KiB, smallest greedy top-1/top-2 logit gap {gap:.4f}", flush=True)
            if gap < 1e-3:
                raise SystemExit(f"{name}: greedy generation is too close to a tie ({gap}); change the seed")
        if transformers_available():
            for name in SPECS:
                print(f"{name}: HF cross-check worst relative error "
                      f"{hf_cross_check(os.path.join(out_dir, name)):.3g}", flush=True)
        else:
            print("transformers is not installed here: no HF cross-check of the new folders", flush=True)
    elif len(argv) == 2 and argv[0] == "capture":
        m = Model(argv[1])
        for k, v in m.forward(CASES["s0"]).items():
            print(k, tuple(v.shape))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
