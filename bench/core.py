"""Benchmark one artifact on one runtime: accuracy, parity against a reference, latency."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.measure import measure
from bench.parity import compare
from bench.preprocess import prepare
from bench.runtimes import open_runtime, runtime_for
from export.manifest import find_manifest
from toolkit.errors import EdgekitError


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def synthetic_images(manifest, batch_size: int, seed: int = 0) -> np.ndarray:
    """Random uint8 images of the artifact's input size, for latency without a dataset."""
    h, w = manifest.preprocessing.size
    c = manifest.preprocessing.channels
    return np.random.default_rng(seed).integers(0, 256, (batch_size, h, w, c), dtype=np.uint8)


def bench_artifact(artifact: str | Path, *, runtime: str | None = None, device: str = "cpu",
                   threads: int | None = None, images: np.ndarray | None = None,
                   labels: np.ndarray | None = None, reference: np.ndarray | None = None,
                   batch_size: int = 1, eval_batch_size: int = 32, report_dir: str | Path = ".",
                   allow_fallback: bool = False, measure_kw: dict | None = None,
                   runtime_kw: dict | None = None,
                   latency: bool = True) -> tuple[dict, np.ndarray | None]:
    """Measure ``artifact``; returns (report row, probabilities on ``images`` or None).

    A failure becomes ``status: failed`` with a one-line ``error``; it never raises for
    a broken artifact, so one bad export does not stop a whole benchmark.
    """
    artifact = Path(artifact)
    row = {"format": None, "runtime": runtime, "device": device, "providers": [],
           "artifact": os.path.relpath(artifact, report_dir), "size_bytes": _size(artifact),
           "accuracy": None, "accuracy_delta": None, "top1_agreement": None, "max_abs_diff": None,
           "mean_abs_diff": None, "kl_divergence": None, "batch_size": batch_size,
           "threads": threads, "latency_ms": None, "throughput_ips": None, "load_ms": None,
           "status": "failed", "error": None}
    probs = None
    try:
        manifest = find_manifest(artifact)
        row["format"] = manifest.format
        row["runtime"] = runtime = runtime or runtime_for(artifact)
        rt = open_runtime(artifact, runtime, manifest=manifest, threads=threads, device=device,
                          allow_fallback=allow_fallback, **(runtime_kw or {}))
        with rt:
            row.update({k: v for k, v in rt.info().items() if k in ("providers", "device")})
            row["load_ms"] = round(rt.load_seconds * 1e3, 2)
            if images is not None:
                probs = rt.predict_images(images, batch_size=eval_batch_size)
                if labels is not None:
                    row["accuracy"] = float((probs.argmax(1) == labels).mean())
                if reference is not None:
                    p = compare(reference, probs, labels)
                    row.update({k: p.get(k) for k in ("accuracy_delta", "top1_agreement",
                                                      "max_abs_diff", "mean_abs_diff",
                                                      "kl_divergence", "per_class_accuracy_delta")})
            if not latency:
                row["status"] = "ok"
                return row, probs
            src = images[:batch_size] if images is not None and len(images) >= batch_size \
                else synthetic_images(manifest, batch_size)
            x = prepare(src, manifest)
            rt.predict(x)  # validate once outside timing
            stats = measure(lambda: rt._predict(x), batch_size=batch_size, **(measure_kw or {}))
        row["latency_ms"] = {k: v for k, v in stats.to_dict().items()
                             if k in ("p50", "p90", "p99", "mean", "std", "min", "n", "first_ms")}
        row["throughput_ips"] = round(stats.throughput, 2)
        row["status"], row["error"] = "ok", None
    except EdgekitError as e:
        row["error"] = _one_line(e)
    except Exception as e:  # a backend's own exception: still one line, never a traceback
        row["error"] = f"{type(e).__name__}: {_one_line(e)}"
    return row, probs


def _size(p: Path) -> int | None:
    try:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() \
            else p.stat().st_size
    except OSError:
        return None


def evaluation_split(spec: str, manifest, seed: int = 0, limit: int | None = None,
                     split: str = "test"):
    """Load dataset ``spec`` at the artifact's input size; returns (dataset, images, labels).

    The same ``seed`` reproduces the split the model was trained with, so the test
    images are ones it never saw.
    """
    from toolkit.data import load_dataset

    ds = load_dataset(spec, image_size=manifest.preprocessing.size[0], seed=seed)
    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    if limit:
        x, y = x[:limit], y[:limit]
    return ds, x, y
