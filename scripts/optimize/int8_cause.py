"""Where int8 leaves the float model, layer by layer, before and after the rewrites
(docs/OPTIMIZE.md "Cause"): TFLite's quantization debugger (RMSE of each quantized tensor
over its quantization step, float activations as the reference) and ONNX Runtime's
qdq_loss_debug (SQNR of each tensor of the QDQ graph against the float graph), on the
calibration images, for the model as it is and after the default rewrites.

Usage:
    python scripts/optimize/int8_cause.py MODEL --calib ../shared/datasets/cifar10.npz \\
        --out docs/optimize/int8/model9-cause.json
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import model_calib_args, provenance, write_json  # noqa: E402

from edgeproof.export.context import context_for_model  # noqa: E402
from edgeproof.export.formats import rewritten_for_integer  # noqa: E402
from edgeproof.export.onnx_quant import node_losses  # noqa: E402
from edgeproof.export.quant_debug import layer_errors  # noqa: E402
from edgeproof.reference import load_reference  # noqa: E402

TOP = 6


def tflite_layers(model, ctx) -> list[dict]:
    rows = sorted(layer_errors(model, ctx), key=lambda r: -r["rmse_over_scale"])
    return [{"tensor": r["tensor_name"], "op": r["op_name"],
             "rmse_over_scale": round(r["rmse_over_scale"], 3)} for r in rows[:TOP]]


def main(argv=None) -> int:
    a = model_calib_args(__doc__, argv)
    ref = load_reference(a.model)
    ctx, _ = context_for_model(ref, a.model, a.calib, 200, 0)
    model = ref.model
    doc = {**provenance("scripts/optimize/int8_cause.py", sys.argv[1:]),
           "model": Path(a.model).name, "variants": {}}
    for name, steps in (("as it is", ["none"]),
                        ("rewritten (default)", ["fold_batchnorm", "equalize",
                                                 "bias_correction"])):
        m, c = rewritten_for_integer(model, ctx, steps)
        doc["variants"][name] = {
            "tflite_worst_tensors": tflite_layers(m, c),
            "onnx_worst_nodes": [{"node": n, "sqnr_loss_db": v}
                                 for n, v in node_losses(m, c)[:TOP]],
            "rewrites": c.conversion.get("exact_rewrites")}
        print(name, doc["variants"][name]["tflite_worst_tensors"][:3], flush=True)
    write_json(a.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
