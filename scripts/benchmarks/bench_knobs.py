"""Measure the runtimes' speed-only knobs, so that their defaults are the fastest measured.

For each artifact of the given model folders (from ``scripts/benchmarks/bench_models.py``) it runs
``bench_isolated`` (a fresh worker per measurement, threads auto-tuned) with the default
settings and with each variant below, on the same 32 seeded random images, and records
the batch-1 p50 and the largest probability difference from the default setting's
outputs (a knob that changes results is not a speed knob). Each setting is measured
``--repeat`` times and the best p50 kept (other load only ever slows a run down).

Usage:
    python scripts/benchmarks/bench_knobs.py /work/bm/flowers_cnn_dropout /work/bm/inception_v3 \\
        /work/bm/resnet50 --out docs/benchmarks/knobs.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edgeproof.bench.one_artifact import bench_isolated
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.manifest import find_manifest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import provenance, write_json  # noqa: E402

VARIANTS = {
    "litert": [{"delegate_clustering": False}, {"latest_features": True}],
    "onnxruntime": [{"graph_optimization": "extended"}, {"graph_optimization": "basic"},
                    {"execution_mode": "parallel", "inter_threads": 2}],
}
FORMATS = ("tflite-fp32", "tflite-dynamic", "tflite-int8", "onnx-fp32", "onnx-int8")


def _best(artifact: Path, images, reference, options: dict, repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        rows, probs = bench_isolated(artifact, BenchSettings(runtime_options=options),
                                     EvalData(images, None, reference))
        row = rows[0]
        if not row.ok:
            return {"error": row.error}
        if best is None or row.p50 < best["p50_ms"]:
            best = {"p50_ms": row.p50, "threads": row.threads,
                    "max_abs_diff_vs_default": row.max_abs_diff, "_probs": probs}
    return best


def measure_folder(folder: Path, repeat: int) -> list[dict]:
    """Every variant of every artifact in ``folder``: one record per (artifact, setting)."""
    records = []
    for fmt in FORMATS:
        found = sorted(folder.glob(f"*-{fmt}.*"))
        if not found:
            continue
        artifact = found[0]
        m = find_manifest(artifact)
        h, w = m.preprocessing.size
        images = np.random.default_rng(0).integers(0, 256, (32, h, w, m.preprocessing.channels),
                                                   dtype=np.uint8)
        runtime = "litert" if artifact.suffix == ".tflite" else "onnxruntime"
        default = _best(artifact, images, None, {}, repeat)
        ref = default.pop("_probs", None)
        records.append({"model": folder.name, "format": fmt, "runtime": runtime,
                        "setting": "default", **default})
        print(json.dumps(records[-1]), flush=True)
        for variant in VARIANTS[runtime]:
            got = _best(artifact, images, ref, variant, repeat)
            got.pop("_probs", None)
            records.append({"model": folder.name, "format": fmt, "runtime": runtime,
                            "setting": variant, **got})
            print(json.dumps(records[-1]), flush=True)
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args(argv)
    records = [r for folder in a.folders for r in measure_folder(folder, a.repeat)]
    write_json(a.out, {**provenance("scripts/benchmarks/bench_knobs.py", sys.argv[1:]),
                       "repeat": a.repeat, "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
