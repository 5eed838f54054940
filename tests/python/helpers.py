"""Shared by the Python module's tests: where things are, and running the actcap CLI."""
import os
import subprocess
import sys
import tempfile

ACTCAP = os.environ["ACTCAP_BINARY"]
DATA = os.environ["ACTCAP_TEST_DATA"]
TINY = os.path.join(DATA, "reference", "tiny-gpt2")
REFERENCE_MODELS = ["gpt2", "llama", "mistral", "qwen2", "qwen3", "opt", "tiny-gpt2"]
sys.path.insert(0, os.path.join(os.environ["ACTCAP_SOURCE_DIR"], "tests", "scripts"))
import readers  # noqa: E402  (the shared safetensors reader of the script tests)


def actcap(*args):
    """Runs the CLI; raises with its stderr when it fails."""
    done = subprocess.run([ACTCAP, *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"actcap {' '.join(map(str, args))} failed: {done.stderr}")
    return done.stdout


def scratch(test):
    """A temporary folder removed when the test ends."""
    folder = tempfile.TemporaryDirectory(prefix="actcap_py_")
    test.addCleanup(folder.cleanup)
    return folder.name


def reference_ids(model):
    """The token ids of the first reference prompt of a model in tests/data/reference."""
    tensors = readers.read_safetensors(os.path.join(DATA, "reference", model, "reference.safetensors"))
    key = "s0/input_ids" if "s0/input_ids" in tensors else sorted(k for k in tensors if k.endswith("input_ids"))[0]
    return [int(token) for token in tensors[key].reshape(-1)]
