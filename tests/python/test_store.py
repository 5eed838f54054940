"""actcap.open: arrays equal the CLI's `export npy` bit for bit, are read-only views of the mapped shards."""
import json
import os
import shutil
import unittest
import warnings

import numpy as np
import torch

import actcap
from helpers import TINY, actcap as cli, scratch

SITES = "hidden_states.*,blocks.*.hook_resid_post,blocks.0.attn.hook_pattern,logits"


def capture(out, *options):
    cli("capture", "--model", TINY, "--prompt", "Hello world", "--prompt", "The capital of France is",
        "--max-new-tokens", 3, "--quiet", "--out", out, *options)


class StoreTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch(self)

    def test_arrays_equal_export_npy_bit_for_bit(self):
        store_dir = os.path.join(self.dir, "store")
        capture(store_dir, "--sites", SITES)
        store = actcap.open(store_dir)
        self.assertEqual(len(store), 2)
        self.assertEqual(store.layout, "per_record")
        for record in range(len(store)):
            npy_dir = os.path.join(self.dir, f"npy{record}")
            cli("export", "npy", store_dir, "--out", npy_dir, "--record", record)
            for site in store.sites:
                expected = np.load(os.path.join(npy_dir, site + ".npy"))[0]
                array = store[record, site]
                self.assertEqual(array.dtype, np.float32)
                self.assertEqual(array.tobytes(), expected.tobytes(), f"record {record} {site}")
                self.assertEqual(array.shape, expected.shape)

    def test_arrays_are_read_only_views_of_the_mapped_shard(self):
        store_dir = os.path.join(self.dir, "store")
        capture(store_dir, "--sites", SITES)
        store = actcap.open(store_dir)
        site = "blocks.1.hook_resid_post"
        first, again = store[0, site], store[0, site]
        self.assertTrue(np.shares_memory(first, again))
        self.assertFalse(first.flags.writeable)
        self.assertFalse(first.flags.owndata)
        with self.assertRaises(ValueError):
            first[0, 0] = 1.0
        # Two tensors of one shard lie as far apart in memory as metadata.jsonl's offsets say: one mapping.
        offsets = [line["offsets"] for line in store.metadata]
        self.assertEqual(store.metadata[0]["shard"], store.metadata[1]["shard"])
        address = lambda array: array.__array_interface__["data"][0]
        self.assertEqual(address(store[1, site]) - address(first), offsets[1][site][0] - offsets[0][site][0])
        self.assertEqual(address(store[0, "logits"]) - address(first), offsets[0]["logits"][0] - offsets[0][site][0])
        # The array keeps the store open: drop every other reference and read it.
        expected = first.copy()
        del store, again
        self.assertEqual(first.tobytes(), expected.tobytes())

    def test_records_iteration_and_torch(self):
        store_dir = os.path.join(self.dir, "store")
        capture(store_dir, "--sites", "blocks.*.hook_resid_post")
        store = actcap.open(store_dir)
        with open(os.path.join(store_dir, "records.jsonl")) as lines:
            expected = [json.loads(line) for line in lines]
        self.assertEqual(store.records, expected)
        self.assertEqual(store.records[1]["text"], "The capital of France is")
        self.assertIn("generated_text", store.records[0])
        self.assertEqual(store.manifest["complete"], True)
        seen = []
        for record, arrays in store:
            seen.append(record["record"])
            self.assertEqual(list(arrays), store.sites)
            self.assertEqual(arrays["blocks.0.hook_resid_post"].tobytes(),
                             store[record["record"], "blocks.0.hook_resid_post"].tobytes())
        self.assertEqual(seen, [0, 1])
        array = store[-1, "blocks.1.hook_resid_post"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns that the array is read-only; tensors share it
            tensor = torch.from_numpy(array)
        self.assertEqual(tensor.dtype, torch.float32)
        self.assertTrue(torch.equal(tensor, torch.tensor(array.copy())))
        self.assertEqual(tensor.data_ptr(), array.__array_interface__["data"][0])

    def test_bf16_store_gives_its_bits_and_float32(self):
        fp32_dir, bf16_dir = os.path.join(self.dir, "fp32"), os.path.join(self.dir, "bf16")
        capture(fp32_dir, "--sites", "blocks.*.hook_resid_post")
        capture(bf16_dir, "--sites", "blocks.*.hook_resid_post", "--store-dtype", "bf16")
        store = actcap.open(bf16_dir)
        self.assertEqual(store.dtype, "BF16")
        cli("export", "npy", bf16_dir, "--out", os.path.join(self.dir, "npy"), "--record", 1)
        site = "blocks.1.hook_resid_post"
        bits = store[1, site]
        self.assertEqual(bits.dtype, np.uint16)
        exported = np.load(os.path.join(self.dir, "npy", site + ".npy"))[0]
        self.assertEqual(store.as_float32(1, site).tobytes(), exported.tobytes())
        self.assertEqual((bits.astype(np.uint32) << 16).view(np.float32).tobytes(), exported.tobytes())
        # bf16 in torch: the bits as int16, viewed as bfloat16 (torch 1.13 has no uint16).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tensor = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)
        self.assertTrue(torch.equal(tensor.float(), torch.from_numpy(exported)))
        # And rounding the fp32 store's values to bf16 gives the same bits.
        fp32 = torch.from_numpy(actcap.open(fp32_dir).as_float32(1, site))
        self.assertTrue(torch.equal(fp32.to(torch.bfloat16), tensor))

    def test_token_stream_rows_and_row_index(self):
        store_dir = os.path.join(self.dir, "stream")
        capture(store_dir, "--sites", "hidden_states.*", "--layout", "token-stream")
        store = actcap.open(store_dir)
        npy_dir = os.path.join(self.dir, "npy")
        cli("export", "npy", store_dir, "--out", npy_dir)
        site = "hidden_states.1"
        shards = store.token_stream(site)
        rows = np.concatenate([rows for rows, _ in shards])
        row_index = np.concatenate([index for _, index in shards])
        self.assertEqual(rows.tobytes(), np.load(os.path.join(npy_dir, site + ".npy")).tobytes())
        self.assertEqual(row_index.tobytes(), np.load(os.path.join(npy_dir, "row_index.npy")).tobytes())
        for record in range(len(store)):
            self.assertEqual(store[record, site].tobytes(), rows[row_index[:, 0] == record].tobytes())
        self.assertFalse(shards[0][0].flags.writeable)

    def test_verify_and_errors(self):
        store_dir = os.path.join(self.dir, "store")
        capture(store_dir, "--sites", "blocks.*.hook_resid_post")
        checked = actcap.open(store_dir).verify()
        self.assertEqual(checked["records"], 2)
        self.assertEqual(checked["shards"], 1)

        damaged = os.path.join(self.dir, "damaged")
        shutil.copytree(store_dir, damaged)
        shard = os.path.join(damaged, "shard-00000.safetensors")
        with open(shard, "r+b") as file:
            file.seek(-1, os.SEEK_END)
            last = file.read(1)
            file.seek(-1, os.SEEK_END)
            file.write(bytes([last[0] ^ 1]))
        with self.assertRaisesRegex(actcap.Error, "shard-00000"):
            actcap.open(damaged, verify=False).verify()

        missing = os.path.join(self.dir, "missing")
        with self.assertRaisesRegex(actcap.Error, missing):
            actcap.open(missing)
        self.assertTrue(issubclass(actcap.Error, RuntimeError))
        store = actcap.open(store_dir)
        with self.assertRaisesRegex(actcap.Error, "no-such-site"):
            store[0, "no-such-site"]
        with self.assertRaises(IndexError):
            store[2, "blocks.0.hook_resid_post"]
        with self.assertRaisesRegex(actcap.Error, "token-stream"):
            store.token_stream("blocks.0.hook_resid_post")

    def test_incomplete_store_is_refused(self):
        store_dir = os.path.join(self.dir, "store")
        capture(store_dir, "--sites", "blocks.*.hook_resid_post")
        manifest_path = os.path.join(store_dir, "manifest.json")
        with open(manifest_path) as file:
            manifest = json.load(file)
        manifest["complete"] = False
        with open(manifest_path, "w") as file:
            json.dump(manifest, file)
        with self.assertRaisesRegex(actcap.Error, store_dir):
            actcap.open(store_dir)


if __name__ == "__main__":
    unittest.main()
