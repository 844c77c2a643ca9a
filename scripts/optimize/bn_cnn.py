"""A small CIFAR-10 CNN the way plain Keras tutorials write it: BatchNormalization after
each activation, a Rescaling(1/255) first layer, seeded (docs/OPTIMIZE.md, issue 20).

Two conv blocks (conv-ReLU-BN, conv-ReLU-BN, max pooling), Dense128-ReLU-BN, softmax. With
``--padding same`` (the tutorials' usual choice) no BatchNorm can be folded by the
converters. Saved with plain ``model.save``: edgeproof reads it as a user's own model.

Usage:
    python scripts/optimize/bn_cnn.py /tmp/i20/cnn_b.keras --widths 32,64 --seed 2 --epochs 2 --padding same
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgeproof.datasets import load_dataset  # noqa: E402
from edgeproof.tfcompat import keras, set_seed  # noqa: E402
from edgeproof.toolkit.train import TrainConfig, train_model  # noqa: E402

CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "datasets",
                     "cifar10.npz")


def build(widths=(32, 64), padding: str = "valid"):
    """The model (random init; the caller seeds)."""
    k = keras()
    inp = k.Input((32, 32, 3), name="image")
    x = k.layers.Rescaling(1 / 255)(inp)
    for w in widths:
        for _ in range(2):
            x = k.layers.Conv2D(w, 3, padding=padding, activation="relu")(x)
            x = k.layers.BatchNormalization()(x)
        x = k.layers.MaxPooling2D()(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(128, activation="relu")(x)
    x = k.layers.BatchNormalization()(x)
    out = k.layers.Dense(10, activation="softmax", name="probs")(x)
    return k.Model(inp, out, name=f"bn_after_act_{padding}_{'_'.join(map(str, widths))}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--widths", default="32,64")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--padding", default="valid", choices=["valid", "same"])
    a = p.parse_args(argv)
    ds = load_dataset(CIFAR, seed=0)
    ds.preprocessing = ds.preprocessing.override({"scale": 1.0, "offset": 0.0})  # raw pixels
    set_seed(a.seed)
    model = build(tuple(int(w) for w in a.widths.split(",")), a.padding)
    result = train_model(model, ds, TrainConfig(epochs=a.epochs, batch_size=128, seed=a.seed,
                                                verbose=2))
    model.save(a.out)
    print(json.dumps({"model": a.out, "val_accuracy": result.history["val_accuracy"][-1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
