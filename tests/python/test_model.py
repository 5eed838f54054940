"""actcap.Model: run() equals a CLI capture bit for bit on every reference model; tokenizer, sites, errors."""
import json
import os
import threading
import time
import unittest

import numpy as np

import actcap
from helpers import REFERENCE_MODELS, DATA, TINY, actcap as cli, reference_ids, scratch


class ModelTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch(self)

    def test_run_equals_cli_capture_on_every_reference_model(self):
        for name in REFERENCE_MODELS:
            with self.subTest(model=name):
                path = os.path.join(DATA, "reference", name)
                ids = reference_ids(name) if name != "tiny-gpt2" else [15496, 995]
                store_dir = os.path.join(self.dir, name)
                cli("capture", "--model", path, "--input-ids", ",".join(map(str, ids)), "--sites", "all",
                    "--max-new-tokens", 2, "--quiet", "--out", store_dir)
                store = actcap.open(store_dir)
                model = actcap.Model(path)
                [result] = model.run([ids], sites="all", max_new_tokens=2)
                self.assertEqual(list(result), store.sites)
                self.assertEqual(result.tokens, store.records[0]["token_ids"])
                self.assertEqual(result.positions, store.records[0]["positions"])
                for site in store.sites:
                    self.assertEqual(result[site].dtype, np.float32)
                    self.assertEqual(result[site].shape, store[0, site].shape, site)
                    self.assertEqual(result[site].tobytes(), store[0, site].tobytes(), site)

    def test_run_with_text_layers_and_several_prompts(self):
        store_dir = os.path.join(self.dir, "store")
        cli("capture", "--model", TINY, "--prompt", "Hello world", "--prompt", "Paris is", "--max-new-tokens", 4,
            "--sites", "blocks.*.hook_resid_post", "--layers", "recommended", "--positions", "last", "--quiet",
            "--out", store_dir)
        store = actcap.open(store_dir)
        model = actcap.Model(TINY)
        results = model.run(["Hello world", "Paris is"], sites=["blocks.*.hook_resid_post"], layers="recommended",
                            positions="last", max_new_tokens=4)
        self.assertEqual(len(results), 2)
        for number, result in enumerate(results):
            record = store.records[number]
            self.assertEqual(result.text, record["text"])
            self.assertEqual(result.generated_text, record["generated_text"])
            self.assertEqual(result.tokens, record["token_ids"])
            self.assertEqual(list(result), store.sites)
            for site in store.sites:
                self.assertEqual(result[site].tobytes(), store[number, site].tobytes())
        # Running again with the same loaded model gives the same bits.
        again = model.run("Hello world", sites="blocks.*.hook_resid_post", layers="recommended",
                          positions="last", max_new_tokens=4)
        for site in store.sites:
            self.assertEqual(again[0][site].tobytes(), results[0][site].tobytes())

    def test_capture_writes_the_store_the_cli_writes(self):
        cli_dir, py_dir = os.path.join(self.dir, "cli"), os.path.join(self.dir, "py")
        prompts = os.path.join(self.dir, "prompts.txt")
        with open(prompts, "w") as file:
            file.write("Hello world\n\nThe capital of France is\n")
        cli("capture", "--model", TINY, "--prompts-file", prompts, "--sites", "blocks.*.hook_resid_post",
            "--max-new-tokens", 3, "--store-dtype", "bf16", "--quiet", "--out", cli_dir)
        summary = actcap.Model(TINY).capture(prompts_file=prompts, out=py_dir, sites="blocks.*.hook_resid_post",
                                             max_new_tokens=3, store_dtype="bf16", progress=False)
        self.assertEqual(summary["records"], 2)
        self.assertEqual(summary["dtype"], "BF16")
        for name in ["shard-00000.safetensors", "records.jsonl", "metadata.jsonl"]:
            with open(os.path.join(cli_dir, name), "rb") as a, open(os.path.join(py_dir, name), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)
        self.assertEqual(actcap.open(py_dir).records[1]["id"], "prompts.txt:3")
        with self.assertRaisesRegex(actcap.Error, "already holds a capture store"):
            actcap.Model(TINY).capture(prompts_file=prompts, out=py_dir, progress=False)

    def test_capture_grades_jsonl_answers_into_the_records(self):
        dataset = os.path.join(self.dir, "qa.jsonl")
        model = actcap.Model(TINY)
        generated = model.run("Hello world", sites="logits", max_new_tokens=3)[0].generated_text
        with open(dataset, "w") as file:
            file.write(json.dumps({"id": "right", "text": "Hello world", "answer": generated}) + "\n")
            file.write(json.dumps({"id": "wrong", "text": "Hello world", "answer": "paris"}) + "\n")
        out = os.path.join(self.dir, "graded")
        summary = model.capture(jsonl=dataset, out=out, sites="hidden_states.0", max_new_tokens=3, progress=False)
        self.assertEqual(summary["accuracy"]["graded"], 2)
        records = actcap.open(out).records
        self.assertEqual([r["id"] for r in records], ["right", "wrong"])
        self.assertEqual([r["grade"]["exact_match"] for r in records], [True, False])
        self.assertEqual(records[0]["generated_text"], generated)

    def test_tokenizer_and_sites_match_the_cli(self):
        model = actcap.Model(TINY)
        self.assertEqual(model.tokenize("Hello world"), json.loads(cli("tokenize", "--model", TINY, "Hello world")))
        self.assertEqual(model.detokenize([15496, 995]), cli("detokenize", "--model", TINY, "15496,995")[:-1])
        listed = cli("sites", "--model", TINY, "--sites", "blocks.*.hook_resid_post", "--layers", "-1").splitlines()
        names = model.sites("blocks.*.hook_resid_post", layers=-1)
        self.assertEqual(names, [line.split()[0] for line in listed[1:-1]])
        self.assertEqual(len(model.sites()), len(cli("sites", "--model", TINY).splitlines()) - 2)
        self.assertEqual(model.num_layers, 2)

    def test_errors_are_actcap_errors_with_its_message(self):
        with self.assertRaisesRegex(actcap.Error, "no-such-model: no such model folder"):
            actcap.Model(os.path.join(self.dir, "no-such-model"))
        model = actcap.Model(TINY)
        with self.assertRaisesRegex(actcap.Error, "blocks.*.hook_resid_pots"):
            model.run("Hello", sites="blocks.*.hook_resid_pots")
        with self.assertRaisesRegex(actcap.Error, "--do-sample"):
            model.run("Hello", max_new_tokens=2, temperature=0.5)
        with self.assertRaisesRegex(actcap.Error, "--out|out="):
            model.capture("Hello")
        with self.assertRaisesRegex(actcap.Error, "shard_size"):
            model.capture("Hello", out=os.path.join(self.dir, "x"), shard_size="lots")

    def test_run_releases_the_gil(self):
        model = actcap.Model(os.path.join(DATA, "reference", "llama"), threads=1)  # a core left for the ticks
        ticks, runs = [], []
        stop = threading.Event()

        def tick():
            while not stop.is_set():
                ticks.append(time.monotonic())
                time.sleep(0.001)

        thread = threading.Thread(target=tick)
        thread.start()
        for _ in range(2):  # runs of about a second, far longer than a loaded machine's scheduling delays
            start = time.monotonic()
            model.run([list(range(1, 100))] * 64, sites="blocks.*.hook_resid_post", max_new_tokens=8)
            runs.append(time.monotonic() - start)
        stop.set()
        thread.join()
        # Had a run held the GIL, the ticking thread would have stalled for a whole run.
        stall = np.diff(ticks).max()
        self.assertLess(stall, min(runs) / 2, f"the ticking thread stalled {stall:.3f} s; runs took {runs}")

if __name__ == "__main__":
    unittest.main()
