"""actcap.Model's steer/ablate/patch options: the same bits as the CLI's --steer/--ablate/--patch, and the model
is unedited again after the call."""
import json
import os
import struct
import unittest

import numpy as np

import actcap
from helpers import TINY, actcap as cli, scratch


def write_vector(path, directions):
    """direction.N tensors as F32 safetensors."""
    header, data = {}, b""
    for block, values in directions.items():
        raw = np.asarray(values, dtype=np.float32).tobytes()
        header[f"direction.{block}"] = {"dtype": "F32", "shape": [len(values)],
                                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


class InterventionsTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch(self)

    def test_options_match_the_cli_bit_for_bit(self):
        vector = os.path.join(self.dir, "v.safetensors")
        write_vector(vector, {1: np.linspace(-1, 1, 32)})
        store_dir = os.path.join(self.dir, "cli")
        cli("capture", "--model", TINY, "--input-ids", "15496,995", "--sites", "all", "--max-new-tokens", 3,
            "--steer", vector + ":2", "--ablate", "blocks.0.hook_mlp_out=zero", "--quiet", "--out", store_dir)
        store = actcap.open(store_dir)
        model = actcap.Model(TINY)
        [steered] = model.run([[15496, 995]], sites="all", max_new_tokens=3, steer=vector + ":2",
                              ablate=["blocks.0.hook_mlp_out=zero"])
        self.assertEqual(steered.tokens, store.records[0]["token_ids"])
        for site in store.sites:
            self.assertEqual(steered[site].tobytes(), store[0, site].tobytes(), site)
        # The next call without interventions is the plain model again.
        [plain] = model.run([[15496, 995]], sites="blocks.0.hook_mlp_out")
        self.assertTrue(np.any(plain["blocks.0.hook_mlp_out"]))

    def test_patch_from_a_store_and_the_manifest(self):
        donor = os.path.join(self.dir, "donor")
        model = actcap.Model(TINY)
        model.capture([[15496, 995]], out=donor, sites="hidden_states.1", progress=False)
        out = os.path.join(self.dir, "patched")
        model.capture([[40, 1842]], out=out, sites="hidden_states.1", patch="hidden_states.1", patch_from=donor,
                      progress=False)
        self.assertEqual(actcap.open(out)[0, "hidden_states.1"].tobytes(),
                         actcap.open(donor)[0, "hidden_states.1"].tobytes())
        with open(os.path.join(out, "manifest.json")) as f:
            [entry] = json.load(f)["interventions"]
        self.assertEqual((entry["kind"], entry["site"], entry["edit_point"]),
                         ("patch", "hidden_states.1", "blocks.0.hook_resid_post"))
        with self.assertRaisesRegex(actcap.Error, "needs --from STORE"):
            model.run([[15496, 995]], patch="hidden_states.1")


if __name__ == "__main__":
    unittest.main()
