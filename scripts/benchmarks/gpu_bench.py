"""ONNX Runtime on the GPU (CUDA and TensorRT providers), measured the way edgeproof measures.

For a Linux box with an NVIDIA GPU that has numpy and onnxruntime-gpu but neither
TensorFlow nor edgeproof installed (``gpu_check.sh`` installs the wheels and runs this).
Every ``*.onnx`` under MODELS is run by edgeproof's device agent (``bench/agent.py`` with
``bench/timing.py``, loaded from this checkout by path) on each provider and batch size,
in a fresh process per model: warm-up, then at least 50 runs and 1 s of timed calls; the
p50 and p90 get their 95% order-statistic intervals (``bench/stats.py``). A provider that
ONNX Runtime could not create is a row that says so (providers as the session reports
them). Writes OUT/<gpu-name>.json with the command, date, GPU and versions.

Usage:
    python scripts/benchmarks/gpu_bench.py MODELS --out docs/benchmarks/gpu [--providers cuda,tensorrt]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):
    """A module of bench/ by path: this box has no edgeproof installed."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gpu_name() -> dict:
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], capture_output=True, text=True)
    except FileNotFoundError:
        return {"name": "no GPU", "driver": "", "memory": ""}
    name, driver, memory = ([s.strip() for s in q.stdout.splitlines()[0].split(",")]
                            if q.returncode == 0 and q.stdout.strip() else ("no GPU", "", ""))
    return {"name": name, "driver": driver, "memory": memory}


def _input(model: Path, batch: int) -> np.ndarray:
    import onnxruntime as ort

    spec = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_inputs()[0]
    shape = [batch] + [d if isinstance(d, int) else 1 for d in spec.shape[1:]]
    if "uint8" in spec.type:
        return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    return np.random.default_rng(0).random(shape, dtype=np.float32)


def measure(model: Path, provider: str, batches: list[int], stats) -> list[dict]:
    """One fresh agent process for ``model`` on ``provider``; a row per batch size."""
    with tempfile.TemporaryDirectory() as d:
        for f in ("agent.py", "timing.py"):
            shutil.copy(BENCH / f, Path(d) / f)
        shutil.copy(model, Path(d) / "m.onnx")
        np.save(Path(d) / "in.npy", _input(model, max(batches)))
        (Path(d) / "job.json").write_text(json.dumps({
            "artifacts": [{"file": "m.onnx", "runtime": "onnxruntime", "latency_input": "in.npy",
                           "batch_sizes": batches, "threads": "default",
                           "options": {"device": provider}}],
            "repeat": 1, "measurement": {"min_runs": 50, "min_seconds": 1.0, "warmup_runs": 10,
                                         "warmup_seconds": 0.5, "max_seconds": 30.0}}))
        (Path(d) / "out").mkdir()
        subprocess.run([sys.executable, str(Path(d) / "agent.py"), d], check=True, timeout=900)
        result = json.loads((Path(d) / "out" / "result.json").read_text())["results"][0]
    base = {"model": model.name, "provider": provider}
    if "error" in result:
        return [{**base, "error": result["error"]}]
    rows = []
    for b in batches:
        ms = np.asarray(result["latency"][str(b)]["samples_ms"])
        rows.append({**base, "batch": b, "providers_used": result["providers"], "n": len(ms),
                     "p50_ms": round(float(np.median(ms)), 4),
                     "p50_ci": [round(v, 4) for v in stats.quantile_ci(ms, 0.5)],
                     "p90_ms": round(float(np.percentile(ms, 90)), 4),
                     "p90_ci": [round(v, 4) for v in stats.quantile_ci(ms, 0.9)],
                     "images_per_s": round(b * 1e3 / float(np.median(ms)), 1),
                     "first_ms": result["latency"][str(b)]["first_ms"]})
    return rows


def _version() -> str | None:
    for dist in ("onnxruntime-gpu", "onnxruntime"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--providers", default="cuda,tensorrt")
    p.add_argument("--batch-sizes", default="1,32")
    a = p.parse_args(argv)
    stats = _load("stats")
    batches = [int(b) for b in a.batch_sizes.split(",")]
    rows = []
    for model in sorted(a.models.rglob("*.onnx")):
        for provider in a.providers.split(","):
            rows += measure(model, provider, batches, stats)
            print(json.dumps(rows[-1]), flush=True)
    gpu = gpu_name()
    doc = {"command": "python scripts/benchmarks/gpu_bench.py " + " ".join(sys.argv[1:]
                                                                          if argv is None else argv),
           "date": _dt.date.today().isoformat(), "gpu": gpu,
           "onnxruntime": _version(),
           "interval": stats.METHOD, "rows": rows}
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"{gpu['name'].replace(' ', '_')}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
