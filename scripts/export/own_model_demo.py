"""A user's own model, as it is: a CIFAR-10 CNN that rescales its own pixels.

Builds the model the way Keras' tutorials do (``Rescaling(1/255)`` as the first layer),
with plain tf_keras and no edgeproof, trains it briefly on raw 0..255 pixels and saves
``my_cifar.keras`` (no manifest). Then, through the real CLI, as a user would:

1. ``edgeproof export my_cifar.keras --format keras,tflite-int8,tflite-dynamic,onnx-int8
   --calib cifar10.npz``: the manifest must say "raw pixels" (the model rescales), so the
   verification shows the Keras model at its real accuracy, not chance;
2. ``edgeproof bench my_cifar.keras --dataset cifar10.npz``: the original file, no
   manifest (its Rescaling is detected); then a TFLite converted with the plain
   converter, which cannot show its scaling (a one-line error), and the same with
   ``--preprocess scale=1`` (raw pixels, as the user knows).

Writes the console output and bench's reports (bench-keras.json, bench-tflite.json)
into ``--out`` (the evidence in docs/evidence/own-model/).

Usage:
    python scripts/export/own_model_demo.py --out docs/evidence/own-model
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import provenance, write_json  # noqa: E402

CIFAR = "../shared/datasets/cifar10.npz"  # relative to the checkout, the commands' cwd
ROOT = Path(__file__).resolve().parents[2]


def build_and_train(out: Path, epochs: int) -> Path:
    """The tutorial-style CNN, trained on raw pixels; returns the .keras and .tflite paths."""
    from edgeproof.tfcompat import keras, tf

    k, t = keras(), tf()
    with np.load(ROOT / CIFAR) as z:
        x, y = z["x_train"], z["y_train"].reshape(-1)
    model = k.Sequential([
        k.Input((32, 32, 3)), k.layers.Rescaling(1 / 255),
        k.layers.Conv2D(32, 3, activation="relu"), k.layers.MaxPooling2D(),
        k.layers.Conv2D(64, 3, activation="relu"), k.layers.MaxPooling2D(),
        k.layers.Conv2D(64, 3, activation="relu"), k.layers.Flatten(),
        k.layers.Dense(64, activation="relu"), k.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype(np.float32), y, epochs=epochs, batch_size=64, verbose=2)
    model.save(out / "my_cifar.keras")
    (out / "my_cifar.tflite").write_bytes(
        t.lite.TFLiteConverter.from_keras_model(model).convert())
    return out / "my_cifar.keras"


def cli(args: list[str]) -> str:
    """``edgeproof ARGS`` from the checkout (relative dataset paths), its console text."""
    p = subprocess.run([sys.executable, "-P", "-m", "edgeproof", *args], cwd=ROOT,
                       capture_output=True, text=True)
    text = f"$ edgeproof {' '.join(args)}\n{p.stdout}{p.stderr}(exit {p.returncode})\n"
    print(text, flush=True)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=3)
    a = p.parse_args(argv)
    a.out = a.out.resolve()
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        model = build_and_train(work, a.epochs)
        export = cli(["export", str(model), "--format", "keras,tflite-int8,tflite-dynamic,onnx-int8",
                      "--calib", CIFAR, "--out", str(work / "exports"), "--force"])
        tfl = str(work / "my_cifar.tflite")
        bench = cli(["bench", str(model), "--dataset", CIFAR, "--limit", "2000",
                     "--json", str(a.out / "bench-keras.json")])
        # The float converter folds the Rescaling into the first convolution, so the
        # .tflite cannot tell how it scales: a one-line error, then the user says it.
        bench += cli(["bench", tfl, "--dataset", CIFAR, "--limit", "2000"])
        bench += cli(["bench", tfl, "--dataset", CIFAR, "--limit", "2000", "--preprocess",
                      "scale=1", "--json", str(a.out / "bench-tflite.json")])
    # The temporary folder's name means nothing to a reader: shown as $TMP.
    (a.out / "console.txt").write_text(export.replace(d, "$TMP") + "\n" + bench.replace(d, "$TMP"))
    for name in ("bench-keras.json", "bench-tflite.json"):
        report = a.out / name
        report.write_text(report.read_text().replace(d, "$TMP"))
    write_json(a.out / "run.json", {**provenance("scripts/export/own_model_demo.py", sys.argv[1:]),
                                    "epochs": a.epochs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
