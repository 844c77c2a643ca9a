"""Training throughput, float32 against mixed_bfloat16, with the input pipeline's own rate.

For each model (lab_model7 on CIFAR-10 at 32 px, flowers_cnn on the flowers at 150 px),
precision and batch size, a fresh process builds the model under that Keras policy,
runs one epoch of ``--steps`` steps (fewer when the training split holds fewer batches) to
trace and warm up, then times a second epoch of the same steps: images/s = steps x batch /
seconds. The same process also times the tf.data
pipeline alone (``make_tf_dataset``, the one training reads) over the same batches, so a
row shows whether the model or the input bounds training. Writes docs/training/throughput.json.

Usage:
    python scripts/training/train_throughput.py --out docs/training/throughput.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import provenance, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "datasets"
CASES = (("lab_model7", str(SHARED / "cifar10.npz"), None), ("flowers_cnn", str(SHARED / "flowers"), 150))
PROBE = r"""
import json, sys, time
spec = json.loads(sys.argv[1])
from edgeproof.datasets import load_dataset
from edgeproof.tfcompat import keras
from edgeproof.toolkit.data import make_tf_dataset
from edgeproof.toolkit.distribute import precision_policy
from edgeproof.toolkit.models import create_model
ds = load_dataset(spec["dataset"], spec["size"], 0)
# Never more steps than the training split holds (a short epoch would time a partial one).
steps = min(spec["steps"], len(ds.y_train) // spec["batch"])
n = steps * spec["batch"]
x, y = ds.x_train[:n], ds.y_train[:n]
data = make_tf_dataset(x, y, ds, spec["batch"], True, 0, epochs=(0, 2))
t0 = time.perf_counter(); seen = 0
for a, b in data:
    seen += len(a)
pipeline = seen / (time.perf_counter() - t0)
with precision_policy(spec["precision"]):
    model = create_model(spec["model"], ds.num_classes, ds.input_shape)
    model.compile("adam", "sparse_categorical_crossentropy")
times = []
class Clock(keras().callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): times.append(time.perf_counter() - self.t)
model.fit(make_tf_dataset(x, y, ds, spec["batch"], True, 0, epochs=(0, 2)), epochs=2,
          steps_per_epoch=steps, callbacks=[Clock()], verbose=0)
print(json.dumps({"train_img_s": n / times[1], "pipeline_img_s": pipeline,
                  "epoch2_s": times[1], "steps": steps}))
"""


def probe(spec: dict) -> dict:
    out = subprocess.run([sys.executable, "-P", "-c", PROBE, json.dumps(spec)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=40)
    a = p.parse_args(argv)
    rows = []
    for model, dataset, size in CASES:
        for batch in (32, 64, 128):
            for precision in ("float32", "mixed_bfloat16"):
                spec = {"model": model, "dataset": dataset, "size": size, "batch": batch,
                        "precision": precision, "steps": a.steps}
                got = probe(spec)
                rows.append({"model": model, "dataset": Path(dataset).name, "image_size": size,
                             "batch": batch, "precision": precision, "steps": got["steps"],
                             "train_img_s": round(got["train_img_s"], 1),
                             "pipeline_img_s": round(got["pipeline_img_s"], 1)})
                print(json.dumps(rows[-1]), flush=True)
    write_json(a.out, {**provenance("scripts/training/train_throughput.py", sys.argv[1:]),
                       "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
