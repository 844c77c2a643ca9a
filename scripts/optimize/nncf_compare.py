"""Intel NNCF's default post-training quantization of the same ONNX file, side by side with
edgeproof's onnx-int8 / tflite-int8 (docs/OPTIMIZE.md, issue 20).

NNCF is not an edgeproof dependency: run this in a scratch environment that has it, e.g.
``python -m venv --system-site-packages /tmp/nncfenv && /tmp/nncfenv/bin/pip install
nncf==3.4.0``. It exports MODEL to onnx-fp32 with ``edgeproof export`` (the graph both
quantizers start from), quantizes it with ``nncf.quantize`` on the same calibration images
edgeproof draws (its train split, class-balanced, 200), runs the result with ONNX Runtime
on the whole test split and compares with MODEL's own answers.

Usage:
    /tmp/nncfenv/bin/python scripts/optimize/nncf_compare.py MODEL \\
        --calib ../shared/datasets/cifar10.npz --out docs/optimize/int8/cnn_b-nncf.json
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import model_calib_args, provenance, write_json  # noqa: E402

from edgeproof.app.reference_answers import reference_probs  # noqa: E402
from edgeproof.export.artifact import write_artifact  # noqa: E402
from edgeproof.export.context import context_for_model  # noqa: E402
from edgeproof.export.formats import export_model  # noqa: E402
from edgeproof.keras_loader import load_keras_model  # noqa: E402
from edgeproof.preprocess import to_float  # noqa: E402


def main(argv=None) -> int:
    import nncf
    import onnx
    import onnxruntime as ort

    a = model_calib_args(__doc__, argv)
    model = load_keras_model(a.model)
    ctx, ds = context_for_model(model, a.model, a.calib, 200, 0)
    ref = reference_probs(model, ds, preprocessing=ctx.preprocessing)
    with tempfile.TemporaryDirectory() as d:
        fp32 = write_artifact(export_model(model, "onnx-fp32", ctx), d, "fp32")
        proto = onnx.load(str(fp32))
        name = proto.graph.input[0].name
        calib = nncf.Dataset(list(ctx.calibration_float()), lambda x: {name: x[None]})
        q = nncf.quantize(proto, calib, subset_size=len(ctx.calibration))
        onnx.save(q, f"{d}/nncf.onnx")
        sess = ort.InferenceSession(f"{d}/nncf.onnx", providers=["CPUExecutionProvider"])
        x = to_float(ds.x_test, ctx.preprocessing)
        probs = np.concatenate([sess.run(None, {name: x[i:i + 64]})[0]
                                for i in range(0, len(x), 64)])
    top, y = probs.argmax(1), ds.y_test
    write_json(a.out, {**provenance("scripts/optimize/nncf_compare.py", sys.argv[1:]),
                       "model": Path(a.model).name, "nncf": nncf.__version__,
                       "test_images": int(len(y)),
                       "top1_agreement": float((top == ref.argmax(1)).mean()),
                       "accuracy_delta": float((top == y).mean() - (ref.argmax(1) == y).mean()),
                       "max_abs_diff": float(np.abs(probs - ref).max())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
