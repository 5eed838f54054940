"""actcap from Python: read capture stores as numpy arrays, and capture activations in memory or into stores.

    import actcap
    store = actcap.open("out/demo")                         # a store: read-only views of its mapped shards
    array = store[0, "blocks.1.hook_resid_post"]              # numpy, no copy
    model = actcap.Model("tests/data/reference/tiny-gpt2")
    out = model.run(["Hello world"], sites=["blocks.*.hook_resid_post"], max_new_tokens=8)
    out[0]["blocks.1.hook_resid_post"], out[0].tokens, out[0].generated_text
    model.capture(["Hello", "world"], out="out/py", sites="all")   # a store, with progress and resume

Arrays work with PyTorch through torch.from_numpy (a bf16 store's uint16 arrays: .view(torch.bfloat16)).
Errors are actcap.Error (a RuntimeError) with actcap's one-line message; Ctrl-C stops a capture with
KeyboardInterrupt, and the store it leaves is continued with resume=True (or `actcap capture ... --resume`).
"""
from ._actcap import Error, Store, open  # noqa: F401  (open: the module's function, as in actcap.open)
from ._actcap import _Model

__all__ = ["Error", "Store", "open", "Model", "Result"]


def _iter_store(self):
    """Each record in record order, as (record dict, {site: read-only array})."""
    for record in self.records:
        number = record["record"]
        yield record, {site: self[number, site] for site in self.sites}


Store.__iter__ = _iter_store


class Result(dict):
    """One prompt's capture from Model.run: {site: float32 array [T_kept, ...]} plus the record's fields as
    attributes: tokens (prompt + generated token ids), n_prompt, positions (of the rows kept), id, text,
    generated_text, grade (with an answer)."""

    def __init__(self, record, sites):
        super().__init__(sites)
        self.record = record
        self.tokens = record["token_ids"]
        self.n_prompt = record["n_prompt"]
        self.positions = record["positions"]
        self.id = record["id"]
        self.text = record.get("text")
        self.generated_text = record.get("generated_text")
        self.grade = record.get("grade")

    def __repr__(self):
        return f"Result(id={self.id!r}, {len(self.tokens)} tokens, sites={list(self)})"


_SIZE_UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
               "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "B": 1, "": 1}


def _shard_bytes(size):
    """--shard-size as bytes: an int, or a string like "1GiB", "512MiB", "100MB"."""
    if isinstance(size, int):
        return size
    text = str(size)
    digits = len(text) - len(text.lstrip("0123456789."))
    unit = text[digits:]
    try:
        value = float(text[:digits]) * _SIZE_UNITS[unit]
    except (KeyError, ValueError):
        raise Error(f'shard_size must be a size like 1GiB, 512MiB or 100000000, got "{size}"') from None
    if value < 1:
        raise Error(f'shard_size must be a size like 1GiB, 512MiB or 100000000, got "{size}"')
    return int(value)


def _listed(value):
    """One value or several as a list (None: none)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _interventions(steer, steer_layers, ablate, patch, patch_from):
    """The capture's interventions as the CLI's --steer, --steer-layers, --ablate, --patch and --from take them
    (steer, ablate, patch: one value or a list)."""
    return dict(steer=[str(s) for s in _listed(steer)], steer_layers=steer_layers,
                ablate=[str(a) for a in _listed(ablate)], patch=[str(p) for p in _listed(patch)],
                patch_from=None if patch_from is None else str(patch_from))


def _sources(prompts, prompts_file=None, jsonl=None, input_dir=None):
    """The inputs as (kind, value) in order: prompts (texts, or lists of token ids), then the files."""
    sources = []
    for prompt in _listed(prompts):
        if isinstance(prompt, str):
            sources.append(("prompt", prompt))
        else:
            sources.append(("input_ids", ",".join(str(int(token)) for token in prompt)))
    sources += [("prompts_file", path) for path in _listed(prompts_file)]
    sources += [("jsonl", path) for path in _listed(jsonl)]
    sources += [("input_dir", path) for path in _listed(input_dir)]
    return sources


def _patterns(sites):
    """sites as the CLI takes them: a comma-separated string, or a list of globs."""
    return sites if sites is None or isinstance(sites, str) else ",".join(sites)


def _layers(layers):
    """layers as the CLI takes them: "0,2,5-7", "recommended", an int, or a list of ints."""
    if layers is None or isinstance(layers, str):
        return layers
    if isinstance(layers, int):
        return str(layers)
    return ",".join(str(layer) for layer in layers)


class Model:
    """A Hugging Face model folder loaded once (as `actcap capture --model DIR` loads it), for in-memory
    captures (run), captures into stores (capture), its tokenizer and its sites.

    device: "cpu", "cuda" or "cuda:N"; dtype: "fp32", "bf16", or "fp16" on cuda; deterministic, allow_tf32: as
    the CLI's --deterministic and --allow-tf32; threads: CPU threads (0 = all)."""

    def __init__(self, path, device="cpu", dtype="fp32", deterministic=False, allow_tf32=False, threads=0):
        self._model = _Model(str(path), device, dtype, deterministic, allow_tf32, threads)

    @property
    def path(self):
        """The model folder."""
        return self._model.path

    @property
    def model_type(self):
        """config.json's model_type (gpt2, llama, ...)."""
        return self._model.model_type

    @property
    def num_layers(self):
        """The number of blocks."""
        return self._model.num_layers

    def __repr__(self):
        return f"actcap.Model({self.path!r}, {self.model_type}, {self.num_layers} layers)"

    def run(self, prompts, sites=None, layers=None, positions="all", max_new_tokens=0, capture_mode="rerun",
            do_sample=False, temperature=None, top_k=None, top_p=None, seed=0, chat=False, max_length=0,
            batch_tokens=4096, steer=None, steer_layers=None, ablate=None, patch=None, patch_from=None):
        """Captures the activations of prompts into memory, like TransformerLens' run_with_cache.

        prompts: a text, or a list of texts and/or lists of token ids. Options as `actcap capture`'s (sites:
        a comma-separated string or a list of globs, default "hidden_states.*"; layers: "0,2,5-7", -1, a list,
        or "recommended"). Returns a list of Result, one per prompt in order: {site: float32 array [T_kept, ...]}
        with .tokens, .text, .generated_text, .positions. The values are the bits `actcap capture` stores in
        fp32. Releases the GIL; Ctrl-C raises KeyboardInterrupt.

        steer ("FILE.gguf[:scale]" or a list), steer_layers ("A-B"), ablate ("SITE=zero", "SITE=mean:STORE" or a
        list), patch (sites) with patch_from (a store): the CLI's --steer, --steer-layers, --ablate, --patch
        and --from."""
        options = dict(sites=_patterns(sites), layers=_layers(layers), positions=positions,
                       max_new_tokens=max_new_tokens, capture_mode=capture_mode, do_sample=do_sample,
                       temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, chat=chat,
                       max_length=max_length, batch_tokens=batch_tokens,
                       **_interventions(steer, steer_layers, ablate, patch, patch_from))
        return [Result(record, dict(sites)) for record, sites in self._model._run(_sources(prompts), options)]

    def capture(self, prompts=None, out=None, sites=None, layers=None, positions="all", max_new_tokens=0,
                capture_mode="rerun", do_sample=False, temperature=None, top_k=None, top_p=None, seed=0,
                chat=False, max_length=0, batch_tokens=4096, layout="per-record", drop_bos=False,
                drop_special=False, store_dtype=None, shard_size="1GiB", resume=False, overwrite=False,
                prompts_file=None, jsonl=None, input_dir=None, progress=True, steer=None, steer_layers=None,
                ablate=None, patch=None, patch_from=None):
        """Captures into a store in `out`, as `actcap capture --out` does (same options, same store).

        Inputs, in this order: prompts (texts or lists of token ids), prompts_file, jsonl, input_dir (each a
        path or a list of paths). progress: the CLI's progress display on stderr (False: quiet). resume=True
        continues an interrupted store (also one interrupted with Ctrl-C). Returns the summary dict
        (summary.json). Open the store with actcap.open(out). steer, steer_layers, ablate, patch, patch_from:
        as run()'s."""
        if out is None:
            raise Error("give the output folder with out=")
        options = dict(sites=_patterns(sites), layers=_layers(layers), positions=positions,
                       max_new_tokens=max_new_tokens, capture_mode=capture_mode, do_sample=do_sample,
                       temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, chat=chat,
                       max_length=max_length, batch_tokens=batch_tokens, layout=layout, drop_bos=drop_bos,
                       drop_special=drop_special, store_dtype=store_dtype, shard_bytes=_shard_bytes(shard_size),
                       resume=resume, overwrite=overwrite, out=str(out),
                       **_interventions(steer, steer_layers, ablate, patch, patch_from))
        sources = _sources(prompts, prompts_file, jsonl, input_dir)
        return self._model._capture(sources, options, progress)[0]

    def tokenize(self, text, add_special_tokens=True):
        """The token ids of a text, exactly as HF tokenizers encodes it."""
        return self._model.tokenize(text, add_special_tokens)

    def detokenize(self, ids, skip_special_tokens=False):
        """The text of token ids, exactly as HF tokenizers decodes them."""
        return self._model.detokenize(list(ids), skip_special_tokens)

    def sites(self, sites="all", layers=None):
        """The model's capture sites in forward order, after a sites/layers choice (as `actcap sites`)."""
        return self._model.sites(_patterns(sites), _layers(layers) or "")
