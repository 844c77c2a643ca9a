"""Build, train and export the models of docs/BENCHMARKS.md.

The models come from the registry (``inception_v3_frozen`` and ``resnet50_frozen`` with
random weights: latency does not depend on them) and are trained with ``edgeproof
train``'s own function for ``--epochs`` (the transfer models one epoch of their head, so
that calibration sees real activations), then exported and checked by ``edgeproof
export``'s (``--calib`` on the flowers).

Args (command line):
    which: flowers_cnn_dropout | inception_v3 | resnet50
    --out: folder for the .keras model and its exports (default bench_models/<which>)
    --epochs: training epochs (default 3 for flowers_cnn_dropout, 1 for transfer models)

Example:
    python scripts/benchmarks/bench_models.py inception_v3 --out bench_models/inception_v3
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edgeproof.app.export_and_check import ExportConfig, export_and_check  # noqa: E402
from edgeproof.app.train_job import TrainJob, train_to_folder  # noqa: E402
from edgeproof.toolkit.train import TrainConfig  # noqa: E402

FLOWERS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "flowers"
# The registered models each name stands for, and their input sizes. Transfer models are
# the registry's frozen variants with random weights: latency does not depend on them.
MODELS = {"flowers_cnn_dropout": ("flowers_cnn_dropout", 150),
          "inception_v3": ("inception_v3_frozen", 150), "resnet50": ("resnet50_frozen", 224)}
FORMATS = ("keras", "tflite-fp32", "tflite-dynamic", "tflite-fp16", "tflite-int8", "onnx-fp32",
           "onnx-fp16", "onnx-int8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("which", choices=sorted(MODELS))
    p.add_argument("--out", default=None)
    p.add_argument("--epochs", type=int, default=None,
                   help="default 3 for flowers_cnn_dropout, 1 for the transfer models")
    p.add_argument("--calib-size", type=int, default=100)
    p.add_argument("--formats", default=",".join(FORMATS))
    a = p.parse_args(argv)
    name, size = MODELS[a.which]
    out = Path(a.out or f"bench_models/{a.which}")
    epochs = a.epochs or (3 if a.which == "flowers_cnn_dropout" else 1)
    # The library's own train (writes model.keras with its manifest) and export-and-check.
    job = TrainJob(dataset=str(FLOWERS), model=name, out=str(out), image_size=size,
                   weights="none", config=TrainConfig(epochs=epochs, batch_size=32, verbose=2),
                   force=True)
    summary = train_to_folder(job, status=print)
    print(f"trained {name} for {summary['epochs_run']} epoch(s) in {summary['fit_seconds']} s")
    result = export_and_check(ExportConfig(model=summary["model_path"], formats=a.formats.split(","),
                                           out=str(out), calib=str(FLOWERS),
                                           calib_size=a.calib_size, name=a.which, force=True),
                              status=print)
    for o in result.outcomes:
        print(f"wrote {o.path} in {o.seconds:.0f} s" if o.path else f"failed {o.format}: {o.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
