"""Benchmark one artifact on one runtime: accuracy, parity against a reference, latency."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from edgeproof.bench.isolate import run_isolated
from edgeproof.bench.measure import bare_loop_check, measure
from edgeproof.bench.memory import MemoryWatch
from edgeproof.bench.parity import compare
from edgeproof.bench.runtimes import get_runtime_class, runtime_for
from edgeproof.bench.threads import AUTO, sweep_threads
from edgeproof.datasets import load_dataset
from edgeproof.bench.derive import artifact_manifest, preprocessing_known
from edgeproof.errors import EdgeproofError, RuntimeFailure, first_line
from edgeproof.preprocess import prepare


def synthetic_images(manifest, batch_size: int, seed: int = 0) -> np.ndarray:
    """Random uint8 images of the artifact's input size, for latency without a dataset."""
    h, w = manifest.preprocessing.size
    c = manifest.preprocessing.channels
    return np.random.default_rng(seed).integers(0, 256, (batch_size, h, w, c), dtype=np.uint8)


ROW_KEYS = ("format", "runtime", "device", "requested_device", "fallback", "providers",
            "artifact", "size_bytes", "accuracy", "accuracy_delta", "top1_agreement",
            "max_abs_diff", "mean_abs_diff", "kl_divergence", "per_class_accuracy_delta",
            "batch_size", "threads", "latency_ms", "throughput_ips", "load_ms", "preprocess_ms",
            "memory_mb", "runtime_details", "thread_sweep", "status", "error")
_PARITY_KEYS = ("accuracy_delta", "top1_agreement", "max_abs_diff", "mean_abs_diff",
                "kl_divergence", "per_class_accuracy_delta")


def bench_artifact(artifact: str | Path, *, batch_size: int = 1,
                   **kw) -> tuple[dict, np.ndarray | None]:
    """Measure ``artifact`` at one batch size; returns (report row, probabilities or None).

    Same arguments as ``bench_batches`` with ``batch_size`` instead of ``batch_sizes``.

    Example:
        >>> row, probs = bench_artifact("m.tflite", images=x, labels=y)  # doctest: +SKIP
    """
    rows, probs = bench_batches(artifact, batch_sizes=(batch_size,), **kw)
    return rows[0], probs


def bench_isolated(artifact: str | Path, **kw) -> tuple[list[dict], np.ndarray | None]:
    """``bench_batches`` in a fresh process (``bench.isolate``): what one runtime does alone.

    A worker that dies becomes failed rows naming the crash.

    Example:
        >>> rows, probs = bench_isolated("m.tflite", images=x, labels=y)  # doctest: +SKIP
    """
    kw.pop("progress", None)  # callbacks do not cross processes
    try:
        return run_isolated(bench_batches, artifact, **kw)
    except EdgeproofError as e:
        return failed_rows(first_line(e), kw.get("batch_sizes", (1,)),
                           artifact=os.path.relpath(artifact, kw.get("report_dir", "."))), None


def failed_rows(error: str, batch_sizes=(1,), **known) -> list[dict]:
    """Result rows (one per batch size) of an artifact that could not be measured.

    Example:
        >>> failed_rows("conversion failed", format="onnx-int8")[0]["status"]
        'failed'
    """
    row = {k: None for k in ROW_KEYS}
    row.update({"providers": [], "status": "failed", "error": error, **known})
    return [dict(row, batch_size=b) for b in batch_sizes]


def bench_batches(artifact: str | Path, *, runtime: str | None = None, device: str = "cpu",
                  threads: int | str | None = AUTO, images: np.ndarray | None = None,
                  labels: np.ndarray | None = None, reference: np.ndarray | None = None,
                  batch_sizes=(1,), eval_batch_size: int = 32, report_dir: str | Path = ".",
                  allow_fallback: bool = False, measure_kw: dict | None = None,
                  runtime_options: dict | None = None, latency: bool = True,
                  bare_loop: bool = False, preprocess: dict | None = None,
                  progress=None) -> tuple[list[dict], np.ndarray | None]:
    """Load ``artifact`` once; accuracy and parity on ``images``, then latency per batch size.

    Args:
        artifact: the file (its manifest ``<artifact>.json`` beside it).
        runtime, device, allow_fallback: how to run it (see the runtimes).
        threads: ``"auto"`` (default: a short sweep picks the fastest count, see
            ``bench.threads``), an int, or None (the runtime's own default).
        runtime_options: options for the runtime; keys it does not declare are ignored
            here (the CLI checks that each key is taken by some artifact's runtime).
        images, labels, reference: uint8 test images, labels and the reference model's
            probabilities on them, for accuracy and parity (each optional).
        batch_sizes: one result row per batch size.
        measure_kw: ``measure()`` settings (min_runs, min_seconds, warm-up).
        latency: False for accuracy/parity only.
        bare_loop: also time a bare loop around the runtime's own call (``bare_loop_check``).
        preprocess: ``--preprocess`` overrides; an artifact without a manifest gets one
            derived from the file (``bench.derive``).
        progress: called with a short message after each stage.

    Returns:
        (rows, probabilities on ``images`` or None). A failure becomes ``status: failed``
        with a one-line ``error``; it never raises, so one bad export does not stop a run.

    Example:
        >>> rows, _ = bench_batches("m.onnx", batch_sizes=(1, 32))  # doctest: +SKIP
    """
    artifact = Path(artifact)
    base = {k: None for k in ROW_KEYS}
    base.update({"runtime": runtime, "device": device, "requested_device": device,
                 "fallback": False, "providers": [], "threads": threads, "status": "failed",
                 "artifact": os.path.relpath(artifact, report_dir), "size_bytes": _size(artifact)})
    rows, probs = [dict(base, batch_size=b) for b in batch_sizes], None
    say = progress or (lambda msg: None)
    try:
        manifest = artifact_manifest(artifact, preprocess)
        base["format"] = manifest.format
        if images is not None and not preprocessing_known(manifest):
            raise RuntimeFailure(f"{artifact.name} has no manifest and does not show how it "
                                 "scales pixels; pass --preprocess scale=...,offset=... to "
                                 "measure accuracy (latency needs none).")
        base["runtime"] = runtime = runtime or runtime_for(artifact)
        cls = get_runtime_class(runtime)
        options = {k: v for k, v in (runtime_options or {}).items() if k in cls.OPTIONS}
        if threads == AUTO:
            sweep = _sweep(cls, artifact, manifest, images, batch_sizes[0], device, options) \
                if latency else None
            threads = sweep["threads"] if sweep else None
            base["thread_sweep"] = sweep
        base["threads"] = "default" if threads is None else threads
        rt = cls(artifact, manifest, threads=threads, device=device,
                 allow_fallback=allow_fallback, **options)
        with MemoryWatch() as load_mem:
            rt.load()
        with rt:
            info = rt.info()
            base.update({k: info[k] for k in ("providers", "device", "requested_device",
                                                "fallback", "runtime_details")})
            base["load_ms"] = round(rt.load_seconds * 1e3, 2)
            mem = load_mem.result()
            base["memory_mb"] = {"rss_before_load": mem["rss_before_mb"],
                                 "load_delta": mem["rss_delta_mb"]}
            base.update(_accuracy(rt, images, labels, reference, eval_batch_size))
            probs = base.pop("_probs")
            say("accuracy")
            rows = [dict(base, batch_size=b) for b in batch_sizes]
            for row in rows:
                if latency:
                    _latency(rt, row, images, manifest, measure_kw or {}, bare_loop,
                             load_mem.before)
                else:
                    row["status"] = "ok"
                say(f"batch {row['batch_size']}")
    except EdgeproofError as e:
        rows = [dict(base, batch_size=b, error=first_line(e)) for b in batch_sizes]
    except Exception as e:  # a runtime's own exception: still one line, never a traceback
        rows = [dict(base, batch_size=b, error=f"{type(e).__name__}: {first_line(e)}")
                for b in batch_sizes]
    return rows, probs


def _sweep(cls, artifact, manifest, images, batch_size: int, device: str, options: dict):
    """The thread sweep at the first batch size (None where only the CPU has threads)."""
    if device != "cpu":  # a GPU's speed does not come from CPU threads
        return None
    x = prepare(_batch_images(images, manifest, batch_size), manifest)
    return sweep_threads(cls, artifact, manifest, x, options)


def _accuracy(rt, images, labels, reference, eval_batch_size) -> dict:
    """Accuracy and parity fields (and ``_probs``) of a loaded runtime on ``images``."""
    out = {"_probs": None}
    if images is None:
        return out
    probs = out["_probs"] = rt.predict_images(images, batch_size=eval_batch_size)
    if labels is not None:
        out["accuracy"] = float((probs.argmax(1) == labels).mean())
    if reference is not None:
        p = compare(reference, probs, labels)
        out.update({k: p.get(k) for k in _PARITY_KEYS})
    return out


def _latency(rt, row: dict, images, manifest, measure_kw: dict, bare: bool, rss0) -> None:
    """Fill ``row``'s latency, throughput, preprocessing and memory for its batch size."""
    b = row["batch_size"]
    try:
        src = _batch_images(images, manifest, b)
        pre = measure(lambda: prepare(src, manifest), batch_size=b, warmup_runs=1,
                      warmup_seconds=0.0, min_runs=5, min_seconds=0.05)
        x = prepare(src, manifest)  # pre-allocated: the timed call reuses this array
        call = rt.timed_call(x)  # validated once, outside the timing
        with MemoryWatch(baseline=rss0) as mem:
            t0 = time.perf_counter()
            call()  # first inference at this batch size, outside the timing
            first_ms = (time.perf_counter() - t0) * 1e3
            stats = measure(call, batch_size=b, **measure_kw)
        row["latency_ms"] = {k: v for k, v in stats.to_dict().items()
                             if k in ("p50", "p90", "p99", "mean", "std", "min", "n")}
        row["latency_ms"]["first_ms"] = round(first_ms, 4)
        row["throughput_ips"] = round(stats.throughput, 2)
        row["preprocess_ms"] = round(pre.p50, 4)
        row["memory_mb"] = dict(row["memory_mb"] or {}, peak_delta=mem.result()["peak_delta_mb"])
        if bare:
            row["bare_loop"] = bare_loop_check(rt, x, **{k: v for k, v in measure_kw.items()
                                                         if k != "max_seconds"})
        row["status"], row["error"] = "ok", None
    except EdgeproofError as e:
        row["error"] = first_line(e)
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {first_line(e)}"


def _batch_images(images, manifest, batch_size: int) -> np.ndarray:
    """``batch_size`` test images (repeated when there are fewer), else synthetic ones."""
    if images is None or not len(images):
        return synthetic_images(manifest, batch_size)
    reps = -(-batch_size // len(images))
    return np.concatenate([images] * reps)[:batch_size] if reps > 1 else images[:batch_size]


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
    images are ones it never saw. ``limit`` keeps a seeded random sample of the split
    (not its first images, which are ordered by class).

    Example:
        >>> ds, x, y = evaluation_split("digits", manifest, seed=0, limit=100)  # doctest: +SKIP
    """
    ds = load_dataset(spec, image_size=manifest.preprocessing.size[0], seed=seed)
    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    if limit and limit < len(y):
        # Splits are stored in file order (class by class): a prefix would be one or two
        # classes. A seeded sample keeps every class and is the same on every run.
        keep = np.sort(np.random.default_rng(seed).choice(len(y), limit, replace=False))
        x, y = x[keep], y[keep]
    return ds, x, y
