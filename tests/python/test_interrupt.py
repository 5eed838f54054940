"""Ctrl-C during Model.capture: a clean KeyboardInterrupt, and a store that `actcap capture --resume` completes
byte for byte as an uninterrupted capture."""
import os
import signal
import subprocess
import sys
import time
import unittest

import actcap
from helpers import TINY, actcap as cli, scratch

OPTIONS = ["--sites", "blocks.*.hook_resid_post", "--max-new-tokens", "4", "--shard-size", "64KiB"]

CAPTURE = """
import sys, actcap
model = actcap.Model(sys.argv[1])
model.capture(prompts_file=sys.argv[2], out=sys.argv[3], sites="blocks.*.hook_resid_post", max_new_tokens=4,
              shard_size="64KiB", progress=False)
"""

RUN = """
import sys, actcap
model = actcap.Model(sys.argv[1])
print("running", flush=True)
model.run(["Prompt number %d says hello world" % i for i in range(20000)],
          sites="blocks.0.hook_resid_post", max_new_tokens=4)
print("finished", flush=True)
"""


class InterruptTest(unittest.TestCase):
    def test_ctrl_c_stops_an_in_memory_run(self):
        child = subprocess.Popen([sys.executable, "-c", RUN, TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        self.assertEqual(child.stdout.readline(), "running\n")
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
        self.assertNotIn("finished", stdout)
        self.assertEqual(stderr.strip().splitlines()[-1], "KeyboardInterrupt", stderr)

    def test_ctrl_c_leaves_a_store_that_resume_completes_identically(self):
        work = scratch(self)
        prompts = os.path.join(work, "prompts.txt")
        with open(prompts, "w") as file:
            for i in range(1000):
                file.write(f"Prompt number {i} says {'hello ' * (i % 7)}world\n")
        interrupted, reference = os.path.join(work, "interrupted"), os.path.join(work, "reference")

        child = subprocess.Popen([sys.executable, "-c", CAPTURE, TINY, prompts, interrupted],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        third_shard = os.path.join(interrupted, "shard-00002.safetensors")
        deadline = time.monotonic() + 120
        while not os.path.exists(third_shard) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
        self.assertNotEqual(child.returncode, 0, "the capture finished before it was interrupted")
        self.assertEqual(stderr.strip().splitlines()[-1], "KeyboardInterrupt", stderr)
        with self.assertRaisesRegex(actcap.Error, "incomplete|resume"):
            actcap.open(interrupted)

        cli("capture", "--model", TINY, "--prompts-file", prompts, *OPTIONS, "--quiet", "--out", interrupted,
            "--resume")
        cli("capture", "--model", TINY, "--prompts-file", prompts, *OPTIONS, "--quiet", "--out", reference)
        stored = sorted(name for name in os.listdir(reference) if name.endswith((".safetensors", ".jsonl")))
        self.assertGreater(len(stored), 5)
        self.assertEqual(stored, sorted(n for n in os.listdir(interrupted) if n.endswith((".safetensors", ".jsonl"))))
        for name in stored:
            with open(os.path.join(reference, name), "rb") as a, open(os.path.join(interrupted, name), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)
        self.assertEqual(actcap.open(interrupted).verify()["records"], 1000)


if __name__ == "__main__":
    unittest.main()
