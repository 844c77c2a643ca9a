"""Build, (optionally) train and export the models of docs/BENCHMARKS.md.

The transfer models are random-init backbones (``tf_keras.applications.*(weights=None,
include_top=False)``) plus a small head, unless ``toolkit.models`` registers
``inception_v3_*`` / ``resnet50_*`` builders: latency does not depend on the weights.
``flowers_cnn_dropout`` is trained for ``--epochs`` so its accuracy column means something.

Args (command line):
    which: flowers_cnn_dropout | inception_v3 | resnet50
    --out: folder for the .keras model and its exports (default bench_models/<which>)
    --epochs: training epochs (default 3 for flowers_cnn_dropout, 0 for transfer models)

Example:
    python scripts/bench_models.py inception_v3 --out bench_models/inception_v3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLOWERS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flowers"
SIZES = {"flowers_cnn_dropout": 150, "inception_v3": 150, "resnet50": 224}
FORMATS = ("keras", "tflite-fp32", "tflite-dynamic", "tflite-fp16", "tflite-int8", "onnx-fp32",
           "onnx-fp16", "onnx-int8")


def build(which: str, num_classes: int, size: int):
    """The Keras model: a registered builder when there is one, else applications + head."""
    from edgeproof.toolkit.models import create_model, list_models

    registered = [m for m in (which + "_frozen", which) if m in list_models()]
    if registered:
        name = registered[0]
        model = create_model(name, num_classes, (size, size, 3), weights="none")
        return model, f"{name} (random init)"
    import tf_keras as k

    app = {"inception_v3": k.applications.InceptionV3, "resnet50": k.applications.ResNet50}[which]
    base = app(weights=None, include_top=False, input_shape=(size, size, 3))
    x = k.layers.GlobalAveragePooling2D()(base.output)
    x = k.layers.Dropout(0.2)(x)
    out = k.layers.Dense(num_classes, activation="softmax")(x)
    model = k.Model(base.input, out, name=f"{which}_head")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, f"{which}_head (random init)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("which", choices=sorted(SIZES))
    p.add_argument("--out", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--calib-size", type=int, default=100)
    p.add_argument("--formats", default=",".join(FORMATS))
    a = p.parse_args(argv)
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.context import model_fingerprint
    from edgeproof.export.formats import export_model
    from edgeproof.datasets import load_dataset
    from edgeproof.toolkit.models import create_model
    from edgeproof.export.context import calibration_context
    from edgeproof.tfcompat import set_seed
    from edgeproof.toolkit.train import TrainConfig, train_model

    size = SIZES[a.which]
    out = Path(a.out or f"bench_models/{a.which}")
    ds = load_dataset(str(FLOWERS), image_size=size, seed=0)
    set_seed(0)
    if a.which == "flowers_cnn_dropout":
        model, name = create_model(a.which, ds.num_classes, ds.input_shape), a.which
    else:
        model, name = build(a.which, ds.num_classes, size)
    epochs = a.epochs if a.epochs is not None else (3 if a.which == "flowers_cnn_dropout" else 0)
    if epochs:
        t = time.time()
        train_model(model, ds, TrainConfig(epochs=epochs, batch_size=32, verbose=2))
        print(f"trained {epochs} epochs in {time.time() - t:.0f} s", flush=True)
    source = {"model_name": name, "sha256": model_fingerprint(model), "dataset": ds.name}
    ctx = calibration_context(ds, a.calib_size, 0, source)
    for fmt in a.formats.split(","):
        t = time.time()
        try:
            path = write_artifact(export_model(model, fmt, ctx), out, f"{a.which}-{fmt}", force=True)
            print(f"wrote {path} in {time.time() - t:.0f} s", flush=True)
        except Exception as e:  # keep going: one failing format must not stop the others
            print(f"failed {fmt}: {str(e).splitlines()[0][:200]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
