"""Build and briefly train an InceptionV3 transfer model (random init) for docs/EXPORT.md.

The model is the shape users bring and converters trip on: a Keras Application base
nested inside a Sequential, with a small head. Random-init weights keep it offline;
the point is export parity, not accuracy.

Example:
    python scripts/export/export_inception.py --dataset ../shared/datasets/flowers \\
        --image-size 96 --epochs 1 --out /tmp/exp/inception
    edgeproof export /tmp/exp/inception/model.keras --format onnx-int8 \\
        --calib ../shared/datasets/flowers --out /tmp/exp/inception/exports
"""

from __future__ import annotations

import argparse
import sys
import time


def build(num_classes: int, size: int):
    """Sequential([InceptionV3 base (weights=None), GAP, Dropout, Dense softmax]).

    Args:
        num_classes: classes of the head.
        size: input side in pixels (>= 75 for InceptionV3).

    Example:
        >>> build(5, 96).layers[0].name  # doctest: +SKIP
        'inception_v3'
    """
    from edgeproof.tfcompat import keras

    k = keras()
    base = k.applications.InceptionV3(weights=None, include_top=False,
                                      input_shape=(size, size, 3))
    return k.Sequential([k.Input((size, size, 3), name="image"), base,
                         k.layers.GlobalAveragePooling2D(), k.layers.Dropout(0.2),
                         k.layers.Dense(num_classes, activation="softmax", name="probs")],
                        name="inception_v3_transfer")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    from edgeproof.datasets import load_dataset
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.context import ExportContext, model_fingerprint
    from edgeproof.export.formats import export_model
    from edgeproof.tfcompat import set_seed
    from edgeproof.toolkit.train import TrainConfig, train_model

    ds = load_dataset(a.dataset, image_size=a.image_size, seed=0)
    set_seed(0)
    model = build(ds.num_classes, a.image_size)
    t0 = time.perf_counter()
    train_model(model, ds, TrainConfig(epochs=a.epochs, batch_size=32, seed=0, verbose=2))
    print(f"trained {a.epochs} epoch(s) in {time.perf_counter() - t0:.0f} s")
    # The library's keras format: the model and the manifest that carries its class names
    # and preprocessing to `edgeproof export`, both written atomically.
    ctx = ExportContext(ds.class_names, ds.preprocessing,
                        source={"model_name": model.name, "sha256": model_fingerprint(model)})
    path = write_artifact(export_model(model, "keras", ctx), a.out, "model", force=True)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
