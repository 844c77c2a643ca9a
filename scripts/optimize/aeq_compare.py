"""Google's AI Edge Quantizer on the same model, for the rung it could add (min-max, MSE,
OCTAV weight calibration of a float .tflite), against the TFLite converter's own int8
(docs/OPTIMIZE.md, issue 20).

Not an edgeproof dependency: ``pip install ai-edge-quantizer==0.10.0`` in a scratch
environment (it pins ai-edge-litert 2.3.0, as edgeproof does). For each choice of float
rewrites (none; edgeproof's default) it exports the model to tflite-fp32 with
edgeproof, quantizes it with the quantizer's ``static_wi8_ai8`` recipe under each
algorithm, runs the result with LiteRT on the whole test split and compares with the
model's own answers.

Usage:
    python scripts/optimize/aeq_compare.py MODEL --calib ../shared/datasets/cifar10.npz \\
        --out docs/optimize/int8/cnn_b-aeq.json
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
from edgeproof.export.formats import export_model, rewritten_for_integer  # noqa: E402
from edgeproof.keras_loader import load_keras_model  # noqa: E402
from edgeproof.preprocess import dequantize, quantize, to_float  # noqa: E402

ALGORITHMS = ("min_max_uniform_quantize", "MSE", "OCTAV")


def _quantized(float_tflite: Path, calib: np.ndarray, algorithm: str) -> bytes:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    qt = quantizer.Quantizer(str(float_tflite))
    rec = recipe.static_wi8_ai8()
    for entry in rec:
        entry["algorithm_key"] = algorithm
    qt.load_quantization_recipe(rec)
    runner = Interpreter(model_path=str(float_tflite))
    sig = list(runner.get_signature_list())[0]
    name = list(runner.get_signature_runner(sig).get_input_details())[0]
    result = qt.calibrate({sig: [{name: c[None]} for c in calib]})
    return bytes(qt.quantize(result).quantized_model)


def _probs(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    (si, zi), (so, zo) = i["quantization"], o["quantization"]
    out = []
    for k in range(len(x)):
        interp.set_tensor(i["index"], quantize(x[k:k + 1], si, zi, i["dtype"].__name__)
                          if si else x[k:k + 1])
        interp.invoke()
        raw = interp.get_tensor(o["index"])
        out.append(dequantize(raw, so, zo) if so else raw)
    return np.concatenate(out)


def main(argv=None) -> int:
    a = model_calib_args(__doc__, argv)
    model = load_keras_model(a.model)
    ctx, ds = context_for_model(model, a.model, a.calib, 200, 0)
    ref = reference_probs(model, ds, preprocessing=ctx.preprocessing)
    x = to_float(ds.x_test, ctx.preprocessing)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for variant, steps in (("none", ["none"]), ("edgeproof rewrites", ["fold_batchnorm",
                                                                        "equalize"])):
            m, c = rewritten_for_integer(model, ctx, steps)
            fp32 = write_artifact(export_model(m, "tflite-fp32", c), d, variant.replace(" ", "_"))
            for algo in ALGORITHMS:
                try:
                    top = _probs(_quantized(fp32, ctx.calibration_float(), algo), x).argmax(1)
                    results[f"{variant}, {algo}"] = {
                        "top1_agreement": float((top == ref.argmax(1)).mean()),
                        "accuracy_delta": float((top == ds.y_test).mean()
                                                - (ref.argmax(1) == ds.y_test).mean())}
                except Exception as e:  # the quantizer refuses a recipe: that is the result
                    results[f"{variant}, {algo}"] = {"error": str(e).splitlines()[0][:200]}
                print(variant, algo, results[f"{variant}, {algo}"], flush=True)
    write_json(a.out, {**provenance("scripts/optimize/aeq_compare.py", sys.argv[1:]),
                       "model": a.model, "test_images": int(len(ds.y_test)), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
