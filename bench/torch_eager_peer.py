"""Plain PyTorch eager fp32 peer of bench/cpu_vs_peers.sh: HF's llama-family math (the formulas of
tests/reference_gen/torch_reference.py) with a KV cache, on a model folder's bf16/fp32 weights upcast to fp32.
A prefill of TOKENS ids keeping every hidden state (the lm_head on the last position only), then greedy decoding
of NEW_TOKENS tokens keeping theirs. One JSON line per run after a warm-up run. Needs Debian's /usr/bin/python3
(torch); ids are (i * 7919 + 13) mod vocab_size, as the other engines get.

    /usr/bin/python3 bench/torch_eager_peer.py MODEL_DIR THREADS TOKENS NEW_TOKENS [RUNS]
"""
import json
import os
import resource
import sys
import time

import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference_gen"))
from torch_reference import Model, act_fn, inv_freq_for, rms_norm, rotate_half, softmax32  # noqa: E402


def forward(model, ids, cache, hidden):
    """Appends ids' keys and values to `cache` (per layer), their hidden states to `hidden`; returns the
    last position's logits."""
    c, w = model.cfg, model.w
    T, start = len(ids), cache[0][0].shape[2] if cache[0] else 0
    x = torch.nn.functional.embedding(torch.tensor([ids]), w["model.embed_tokens.weight"])
    hidden.append(x)
    pos = torch.arange(start, start + T, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq_for(c.rope, c.head_dim).float())
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    mask = torch.full((T, start + T), torch.finfo(torch.float32).min).triu(start + 1)
    act, rep = act_fn(c.act), c.heads // c.kv_heads
    for i in range(c.layers):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], c.eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(1, T, -1, c.head_dim)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(1, T, -1, c.head_dim)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(1, T, -1, c.head_dim)
        if c.qk_norm:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], c.eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], c.eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache[i]:
            k, v = torch.cat((cache[i][0], k), 2), torch.cat((cache[i][1], v), 2)
        cache[i] = (k, v)
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        att = softmax32(q @ k.transpose(2, 3) * c.head_dim ** -0.5 + mask)
        z = (att @ v).transpose(1, 2).reshape(1, T, -1)
        x = x + z @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], c.eps)
        gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (act(gate) * up) @ w[p + "mlp.down_proj.weight"].T
        hidden.append(x)
    hidden[-1] = rms_norm(x, w["model.norm.weight"], c.eps)
    head = w["model.embed_tokens.weight"] if c.tied else w["lm_head.weight"]
    return hidden[-1][0, -1] @ head.T


def main(argv):
    folder, threads, tokens, new_tokens = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    runs = int(argv[5]) if len(argv) > 5 else 1
    torch.set_num_threads(threads)
    start = time.perf_counter()
    model = Model(folder)
    load_s = time.perf_counter() - start
    ids = [(i * 7919 + 13) % model.cfg.vocab for i in range(tokens)]
    with torch.no_grad():
        for run in range(runs + 1):  # run 0 warms up
            cache, hidden = [None] * model.cfg.layers, []
            start = time.perf_counter()
            generated = [int(torch.argmax(forward(model, ids, cache, hidden)))]
            prefill_s = time.perf_counter() - start
            start = time.perf_counter()
            while len(generated) < new_tokens:
                generated.append(int(torch.argmax(forward(model, [generated[-1]], cache, hidden))))
            decode_s = time.perf_counter() - start
            if run == 0:
                continue
            print(json.dumps({"run": run, "threads": threads, "prompt_tokens": tokens, "new_tokens": new_tokens,
                              "prefill_tok_s": tokens / prefill_s, "decode_tok_s": (new_tokens - 1) / decode_s,
                              "load_s": load_s, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                              "ids": generated}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
