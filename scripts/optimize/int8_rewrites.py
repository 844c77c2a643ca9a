"""Does an integer export keep its answers? `edgeproof export --calib` with each choice of
float rewrites before quantizing, tflite-int8 and onnx-int8, checked on the test split.

For each variant (no rewrites; BatchNorm folding; folding + cross-layer equalization; + bias
correction, the default) it runs the real CLI: ``edgeproof export MODEL --format
tflite-int8,onnx-int8 --calib DATA --option rewrites=… --json``, whose export check runs
every file on its runtime over the test split against MODEL. Writes OUT (JSON) with the
command of each run, the machine and the date (docs/OPTIMIZE.md renders it).

Usage:
    python scripts/optimize/int8_rewrites.py MODEL --calib ../shared/datasets/cifar10.npz \\
        --out docs/optimize/int8/cnn_b.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import model_calib_args, provenance, write_json  # noqa: E402

VARIANTS = {"none": "none", "fold": "fold_batchnorm", "fold+equalize": "fold_batchnorm,equalize",
            "fold+equalize+bias_correction (default)": "fold_batchnorm,equalize,bias_correction"}


def export_check(model: str, calib: str, rewrites: str, formats: str) -> list[dict]:
    """The export check's rows (one per format) for one choice of rewrites."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-P", "-m", "edgeproof", "export", model, "--format", formats,
               "--calib", calib, "--option", f"rewrites={rewrites}", "--out", d,
               "--json", f"{d}/check.json", "--quiet"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode not in (0, 1):
            raise SystemExit(r.stderr.strip().splitlines()[-1])
        rows = json.loads(Path(d, "check.json").read_text())
        manifests = {f: json.loads(p.read_text()) for f in formats.split(",")
                     for p in Path(d).glob(f"*-{f}.*.json")}
    return [{"format": row["format"], "top1_agreement": row["top1_agreement"],
             "accuracy": row["accuracy"], "accuracy_delta": row["accuracy_delta"],
             "max_abs_diff": row["max_abs_diff"],
             "rewrites": (manifests.get(row["format"], {}).get("conversion") or {}).get(
                 "exact_rewrites")} for row in rows]


def main(argv=None) -> int:
    a = model_calib_args(__doc__, argv, extra=lambda p: p.add_argument(
        "--formats", default="tflite-int8,onnx-int8"))
    results = {}
    for name, rewrites in VARIANTS.items():
        results[name] = export_check(a.model, a.calib, rewrites, a.formats)
        print(name, json.dumps([(r["format"], r["top1_agreement"]) for r in results[name]]),
              flush=True)
    write_json(a.out, {**provenance("scripts/optimize/int8_rewrites.py", sys.argv[1:]),
                       "model": Path(a.model).name, "variants": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
