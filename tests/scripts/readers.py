# The safetensors reader the test scripts share: json + struct + numpy, no actcap code, so what actcap writes is
# checked by an independent reader. Runs on Debian's /usr/bin/python3 with numpy; scripts put this folder on
# PYTHONPATH (or sys.path) and `import readers`.
import glob, json, os, struct
import numpy as np

# BF16 has no numpy dtype: it is read as its uint16 bit patterns.
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32, "U16": np.uint16,
          "U8": np.uint8, "BOOL": np.bool_}


def bf16_to_float32(bits):
    """BF16 bit patterns (uint16) widened exactly to float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_safetensors_typed(path):
    """{name: (safetensors dtype, array)}, BF16 as its uint16 bit patterns (for bit-exact comparisons)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        dtype = entry["dtype"]
        out[name] = (dtype, np.frombuffer(data[begin:end], dtype=DTYPES[dtype]).reshape(entry["shape"]))
    return out


def read_safetensors(path):
    """{name: array} in the stored dtypes, except BF16, which comes out as float32."""
    return {name: bf16_to_float32(a) if dtype == "BF16" else a
            for name, (dtype, a) in read_safetensors_typed(path).items()}


def store_shards(store_dir):
    """The shard files of a capture store, in order."""
    return sorted(glob.glob(os.path.join(store_dir, "shard-*.safetensors")))


def read_store_tensors(store_dir):
    """Every tensor of a capture store's shards, {"<record>/<site>": array}, BF16 as float32."""
    tensors = {}
    for shard in store_shards(store_dir):
        tensors.update(read_safetensors(shard))
    return tensors
