"""Benchmark one artifact on one runtime: accuracy, parity against a reference, latency.

``bench_batches`` loads the artifact once, computes accuracy and parity on ``EvalData``,
then times one row per batch size; it never raises (a failure is a row with its one-line
error), so one bad export does not stop a run. ``bench_isolated`` does the same in a fresh
worker process, which is how every command measures (runtimes sharing a process slow
each other down).

Example:
    >>> rows, probs = bench_batches("m.onnx", BenchSettings(batch_sizes=(1, 32)))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from edgeproof.bench.derive import artifact_manifest, preprocessing_known
from edgeproof.bench.isolate import run_isolated
from edgeproof.bench.measure import Measurement, bare_loop_check, measure
from edgeproof.bench.rss import MemoryWatch
from edgeproof.bench.parity import compare
from edgeproof.bench.row import BenchRow, failed_rows
from edgeproof.bench.runtimes import get_runtime_class, runtime_for
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.bench.threads import sweep_threads
from edgeproof.datasets import load_dataset
from edgeproof.errors import EdgeproofError, RuntimeFailure, first_line
from edgeproof.manifest import Manifest, manifest_path
from edgeproof.preprocess import prepare

_PARITY_KEYS = ("accuracy_delta", "top1_agreement", "max_abs_diff", "mean_abs_diff",
                "kl_divergence", "per_class_accuracy_delta", "parity_counts")
_PREPARE = Measurement(warmup_runs=1, warmup_seconds=0.0, min_runs=5, min_seconds=0.05)


def synthetic_images(manifest, batch_size: int, seed: int = 0) -> np.ndarray:
    """Random uint8 images of the artifact's input size, for latency without a dataset.

    Example:
        >>> synthetic_images(manifest, 2).shape  # doctest: +SKIP
        (2, 32, 32, 1)
    """
    h, w = manifest.preprocessing.size
    c = manifest.preprocessing.channels
    return np.random.default_rng(seed).integers(0, 256, (batch_size, h, w, c), dtype=np.uint8)


def bench_artifact(artifact: str | Path, settings: BenchSettings = BenchSettings(),
                   data: EvalData | None = None, report_dir: str | Path = ".",
                   ) -> tuple[BenchRow, np.ndarray | None]:
    """``bench_batches`` at the settings' first batch size; returns (row, probabilities).

    Example:
        >>> row, probs = bench_artifact("m.tflite", data=EvalData(x, y))  # doctest: +SKIP
    """
    rows, probs = bench_batches(artifact, settings.replace(batch_sizes=settings.batch_sizes[:1]),
                                data, report_dir)
    return rows[0], probs


def bench_isolated(artifact: str | Path, settings: BenchSettings = BenchSettings(),
                   data: EvalData | None = None, report_dir: str | Path = ".",
                   ) -> tuple[list[BenchRow], np.ndarray | None]:
    """``bench_batches`` in a fresh process (``bench.isolate``): what one runtime does alone.

    A worker that dies becomes failed rows naming the crash.

    Example:
        >>> rows, probs = bench_isolated("m.tflite", data=EvalData(x, y))  # doctest: +SKIP
    """
    try:
        return run_isolated(bench_batches, artifact, settings, data, report_dir)
    except EdgeproofError as e:
        return failed_rows(first_line(e), settings.batch_sizes,
                           artifact=os.path.relpath(artifact, report_dir)), None


def bench_batches(artifact: str | Path, settings: BenchSettings = BenchSettings(),
                  data: EvalData | None = None, report_dir: str | Path = ".",
                  progress=None) -> tuple[list[BenchRow], np.ndarray | None]:
    """Load ``artifact`` once; accuracy and parity on ``data``, then latency per batch size.

    Args:
        artifact: the file (its manifest beside it, inside it, or derived from the file).
        settings: how to run and time it (``BenchSettings``).
        data: images, labels and reference probabilities (None: latency on synthetic
            images only).
        report_dir: the artifact path in each row is relative to it.
        progress: called with a short message after each stage.

    Returns:
        (one row per batch size, probabilities on ``data.images`` or None). A failure is
        ``status: failed`` with a one-line ``error``; this never raises.

    Example:
        >>> rows, _ = bench_batches("m.onnx", BenchSettings(batch_sizes=(1, 32)))  # doctest: +SKIP
    """
    artifact = Path(artifact)
    base = BenchRow(runtime=settings.runtime, device=settings.device,
                    requested_device=settings.device,
                    artifact=os.path.relpath(artifact, report_dir), size_bytes=_size(artifact))
    say = progress or (lambda msg: None)
    try:
        return _measure(artifact, settings, data, base, say)
    except EdgeproofError as e:
        return failed_rows(first_line(e), settings.batch_sizes, **_known(base)), None
    except Exception as e:  # a runtime's own exception: still one line, never a traceback
        return failed_rows(f"{type(e).__name__}: {first_line(e)}", settings.batch_sizes,
                           **_known(base)), None


def _known(base: BenchRow) -> dict:
    return {k: getattr(base, k) for k in ("format", "runtime", "device", "requested_device",
                                          "artifact", "size_bytes", "threads", "thread_sweep",
                                          "threads_default")}


def _measure(artifact: Path, settings: BenchSettings, data, base: BenchRow, say):
    manifest = artifact_manifest(artifact, settings.preprocess)
    base.format = manifest.format
    if data is not None and not preprocessing_known(manifest):
        raise RuntimeFailure(f"{artifact.name} has no manifest and does not show how it "
                             "scales pixels; pass --preprocess scale=...,offset=... to "
                             "measure accuracy (latency needs none).")
    fixed = manifest.input.shape[0] if manifest.input.shape else -1
    if settings.latency and fixed > 0 and any(b != fixed for b in settings.batch_sizes):
        raise RuntimeFailure(f"{artifact.name} has a fixed batch of {fixed} (an exporter "
                             "specialised it to its example's): bench it with --batch-sizes "
                             f"{fixed}, or re-export it with a dynamic batch axis.")
    base.runtime = runtime = settings.runtime or runtime_for(artifact)
    cls = get_runtime_class(runtime)
    options = {k: v for k, v in settings.runtime_options.items() if k in cls.OPTIONS}
    threads = _threads(cls, artifact, manifest, data, settings, options, base)
    rt = cls(artifact, manifest, threads=threads, device=settings.device,
             allow_fallback=settings.allow_fallback, **options)
    with MemoryWatch() as load_mem:
        rt.load()
    with rt:
        info = rt.info()
        for key in ("providers", "device", "ran_on", "requested_device", "fallback",
                    "runtime_details"):
            setattr(base, key, info[key])
        base.micro = info.get("micro")  # a microcontroller interpreter's memory (tflm)
        base.load_ms = round(rt.load_seconds * 1e3, 2)
        mem = load_mem.result()
        base.memory_mb = {"rss_before_load": mem["rss_before_mb"],
                          "load_delta": mem["rss_delta_mb"]}
        fields, probs = _accuracy(rt, data, settings.eval_batch_size)
        for key, value in fields.items():
            setattr(base, key, value)
        say("accuracy")
        rows = [base.replace(batch_size=b) for b in settings.batch_sizes]
        images = data.images if data is not None else None
        for row in rows:
            if settings.latency:
                _latency(rt, row, images, manifest, settings, load_mem.before)
            else:
                row.status = "ok"
            say(f"batch {row.batch_size}")
    return rows, probs


def _threads(cls, artifact, manifest, data, settings: BenchSettings, options, base: BenchRow):
    """The count to open the runtime with (None: its default), recorded in ``base``."""
    threads = settings.threads.fixed
    if settings.threads.mode == "auto" and settings.latency and settings.device == "cpu" \
            and cls.tunable_threads:
        # A GPU's speed does not come from CPU threads: the sweep is for CPU runs only.
        images = data.images if data is not None else None
        x = prepare(_batch_images(images, manifest, settings.batch_sizes[0]), manifest)
        base.thread_sweep = sweep_threads(cls, artifact, manifest, x, options)
        threads = base.thread_sweep["threads"]
    base.threads_default = threads is None
    base.threads = cls.default_threads() if threads is None else threads
    return threads


def _accuracy(rt, data: EvalData | None, eval_batch_size: int):
    """(accuracy and parity fields, probabilities) of a loaded runtime on ``data``."""
    if data is None:
        return {}, None
    probs = rt.predict_images(data.images, batch_size=eval_batch_size)
    fields = {}
    if data.labels is not None:
        fields["accuracy"] = float((probs.argmax(1) == data.labels).mean())
    if data.reference is not None:
        p = compare(data.reference, probs, data.labels)
        fields.update({k: p.get(k) for k in _PARITY_KEYS})
    return fields, probs


def _latency(rt, row: BenchRow, images, manifest, settings: BenchSettings, rss0) -> None:
    """Fill ``row``'s latency, throughput, preprocessing and memory for its batch size."""
    b = row.batch_size
    try:
        src = _batch_images(images, manifest, b)
        pre = measure(lambda: prepare(src, manifest), batch_size=b, settings=_PREPARE)
        x = prepare(src, manifest)  # pre-allocated: the timed call reuses this array
        call = rt.timed_call(x)  # validated once, outside the timing
        with MemoryWatch(baseline=rss0) as mem:
            t0 = time.perf_counter()
            call()  # first inference at this batch size, outside the timing
            first_ms = (time.perf_counter() - t0) * 1e3
            stats = measure(call, batch_size=b, settings=settings.measurement)
        row.latency_ms = {k: v for k, v in stats.to_dict().items()
                          if k in ("p50", "p50_ci", "p90", "p90_ci", "p99", "mean", "std",
                                   "min", "n")}
        row.latency_ms["first_ms"] = round(first_ms, 4)
        row.throughput_ips = round(stats.throughput, 2)
        row.samples = {b: stats.samples}
        row.preprocess_ms = round(pre.p50, 4)
        row.memory_mb = dict(row.memory_mb or {}, peak_delta=mem.result()["peak_delta_mb"])
        if settings.bare_loop:
            row.bare_loop = bare_loop_check(rt, x, settings.measurement)
        row.status, row.error = "ok", None
    except EdgeproofError as e:
        row.error = first_line(e)
    except Exception as e:
        row.error = f"{type(e).__name__}: {first_line(e)}"


def _batch_images(images, manifest, batch_size: int) -> np.ndarray:
    """``batch_size`` test images (repeated when there are fewer), else synthetic ones."""
    if images is None or not len(images):
        return synthetic_images(manifest, batch_size)
    reps = -(-batch_size // len(images))
    return np.concatenate([images] * reps)[:batch_size] if reps > 1 else images[:batch_size]


def _size(p: Path) -> int | None:
    """A folder's files, or a file and the companions its sidecar manifest lists (an
    OpenVINO IR's .bin: ``export.artifact``)."""
    try:
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        side = manifest_path(p)
        extra = Manifest.load(side).conversion.get("companion_files") or {} \
            if side.exists() else {}
        return p.stat().st_size + sum(p.with_suffix(s).stat().st_size for s in extra)
    except (OSError, EdgeproofError):
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
    if limit:
        kept = EvalData(x, y).sample(limit, seed)  # every class, the same on every run
        x, y = kept.images, kept.labels
    return ds, x, y
