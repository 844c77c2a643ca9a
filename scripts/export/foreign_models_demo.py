"""Models from Keras 3 and PyTorch through edgeproof, as they come: the evidence of
docs/EXPORT.md "Models from Keras 3 and PyTorch".

1. ``foreign_models.py keras3`` (a process of its own, ``TF_USE_LEGACY_KERAS`` unset) trains
   a CIFAR-10 CNN with Keras 3 (``Rescaling(1/255)`` first, BatchNorm) for ``--epochs`` and
   saves it three ways: ``model.save`` (.keras), ``model.export()`` (SavedModel),
   ``model.export(format="onnx")``; ``foreign_models.py torch-onnx`` writes an NCHW graph
   as PyTorch does (ending in logits).
2. Through the real CLI: ``export --format tflite-fp32,tflite-int8,onnx-fp32 --calib`` of
   the .keras (checked on the whole test split) and of the SavedModel; ``bench --reference
   model.keras`` (``--limit``); ``parity`` of both ONNX paths of the Keras 3 model (tf2onnx,
   which edgeproof uses, and Keras 3's own export) against the .keras; ``export``,
   ``bench`` and ``optimize`` of the ONNX files, the optimize recommendation re-checked
   with ``parity`` on the test split.
3. The cost of loading Keras 3 in edgeproof's (tf-keras) process: import time and RSS.

Writes ``summary.json`` (the numbers, with provenance) and ``console.txt`` into ``--out``.

Usage:
    python scripts/export/foreign_models_demo.py --out docs/evidence/foreign-models
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import provenance, write_json  # noqa: E402

CIFAR = "../shared/datasets/cifar10.npz"  # relative to the checkout, the commands' cwd
ROOT = Path(__file__).resolve().parents[2]
MAKER = Path(__file__).resolve().with_name("foreign_models.py")
_COST = """
import json, os, resource, sys, time
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter(); from edgeproof.tfcompat import keras; keras()
t1 = time.perf_counter(); r1 = rss()
from edgeproof.keras_loader import keras3; keras3()
t2 = time.perf_counter(); r2 = rss()
from edgeproof.reference import load_reference; ref = load_reference(sys.argv[1])
t3 = time.perf_counter()
print(json.dumps({"tf_and_tf_keras_import_s": round(t1 - t0, 2),
                  "rss_after_tf_keras_mib": round(r1),
                  "keras3_import_s": round(t2 - t1, 2), "keras3_import_rss_mib": round(r2 - r1),
                  "load_model_keras_s": round(t3 - t2, 2), "kind": ref.kind}))
"""


class Run:
    """The CLI as a user runs it, from the checkout; the console text is collected."""

    def __init__(self, work: Path):
        self.work, self.console = work, []

    def cli(self, *args) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-P", "-m", "edgeproof", *map(str, args)], cwd=ROOT,
                           capture_output=True, text=True)
        text = f"$ edgeproof {' '.join(map(str, args))}\n{p.stdout}{p.stderr}(exit {p.returncode})\n"
        self.console.append(text.replace(str(self.work), "$TMP"))  # a temporary folder
        print(self.console[-1][-3000:], flush=True)
        return p

    def json(self, path: Path):
        return json.loads(path.read_text())


def _rows(report) -> dict:
    rows = report["results"] if isinstance(report, dict) else report
    keep = ("accuracy", "accuracy_delta", "top1_agreement", "max_abs_diff", "status")
    return {r["format"]: {k: r.get(k) for k in keep} for r in rows}


def _parity(run: Run, ref, cand, *extra) -> dict:
    p = run.cli("parity", ref, cand, "--dataset", CIFAR, "--json", *extra)
    data = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
    keep = ("n", "reference_accuracy", "accuracy", "top1_agreement", "max_abs_diff",
            "kl_divergence")
    return {**{k: data.get(k) for k in keep}, "passed": data.get("gate", {}).get("passed")}


def keras3_paths(run: Run, k3: Path, limit: str) -> dict:
    w, out = run.work, {}
    fmts = "tflite-fp32,tflite-int8,onnx-fp32"
    for name, model in (("keras", k3 / "model.keras"), ("savedmodel", k3 / "savedmodel")):
        run.cli("export", model, "--format", fmts, "--calib", CIFAR, "--out", w / f"exp-{name}",
                "--json", w / f"{name}-export.json", "--quiet")
        out[f"{name}_export_check_test_split"] = _rows(run.json(w / f"{name}-export.json"))
    arts = [w / "exp-keras" / f"model-{f}" for f in ("tflite-fp32.tflite", "tflite-int8.tflite",
                                                     "onnx-fp32.onnx")]
    run.cli("bench", *arts, "--dataset", CIFAR, "--reference", k3 / "model.keras", "--limit",
            limit, "--threads", "1", "--json", w / "bench.json", "--quiet")
    out["bench_reference_keras"] = _rows(run.json(w / "bench.json"))
    out["onnx_path_tf2onnx"] = _parity(run, k3 / "model.keras", arts[2], "--limit", limit)
    out["onnx_path_keras3_export"] = _parity(run, k3 / "model.keras", k3 / "model.onnx",
                                             "--limit", limit)
    return out


def onnx_paths(run: Run, k3_onnx: Path, torch: Path, limit: str) -> dict:
    w, out = run.work, {}
    for name, model, extra in (("keras3_onnx", k3_onnx, []),
                               ("torch_onnx", torch, ["--preprocess", "scale=1/255"])):
        run.cli("export", model, "--format", "onnx-fp32,onnx-int8", "--calib", CIFAR, "--out",
                w / f"exp-{name}", "--json", w / f"{name}-export.json", "--quiet", *extra)
        out[f"{name}_export_check_test_split"] = _rows(run.json(w / f"{name}-export.json"))
        opt = w / f"opt-{name}"
        run.cli("optimize", model, "--dataset", CIFAR, "--formats", "onnx-fp32,onnx-int8",
                "--out", opt, "--quiet", *extra)
        result = run.json(opt / "optimize.json")
        rungs = [{"rung": c["rung"], "passed": c["passed"],
                  "validation_agreement": (c.get("validation") or {}).get("top1_agreement"),
                  "test_agreement": c.get("top1_agreement")} for c in result["candidates"]]
        rec = result["recommendation"]
        out[f"{name}_optimize"] = {"rungs": rungs, "recommended": rec and rec["format"]}
        if rec is None:
            continue
        chosen = opt / "models" / os.path.basename(rec["artifact"])
        out[f"{name}_optimize"].update(rung=rec["rung"], recheck_test_split=_parity(
            run, model, chosen, "--max-accuracy-drop", "0.5", *extra))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", default="2000", help="bench / parity test images")
    a = p.parse_args(argv)
    a.out = a.out.resolve()
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    with tempfile.TemporaryDirectory() as d:
        run = Run(Path(d))
        made = {}
        for kind, folder, extra in (("keras3", "k3", ["--epochs", str(a.epochs)]),
                                    ("torch-onnx", "torch", ["--limit", "10000"])):
            r = subprocess.run([sys.executable, str(MAKER), kind, "--data", CIFAR, "--out",
                                str(run.work / folder), *extra], cwd=ROOT, env=env,
                               capture_output=True, text=True, check=True)
            made[kind] = json.loads(r.stdout.strip().splitlines()[-1])
        k3 = run.work / "k3"
        cost = subprocess.run([sys.executable, "-c", _COST, str(k3 / "model.keras")], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        summary = {**provenance("scripts/export/foreign_models_demo.py", sys.argv[1:]),
                   "made": made, "keras3_in_process": json.loads(cost.stdout.splitlines()[-1]),
                   **keras3_paths(run, k3, a.limit),
                   **onnx_paths(run, k3 / "model.onnx", run.work / "torch" / "model.onnx",
                                a.limit)}
        console = "\n".join(run.console)
    write_json(a.out / "summary.json", summary)
    (a.out / "console.txt").write_text(console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
