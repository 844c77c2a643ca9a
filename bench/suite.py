"""Many artifacts at once, and parity between two: the library calls behind ``bench`` and
``parity``.

``bench_all`` measures every artifact (each in a fresh worker process unless
``in_process``) at every batch size under a progress bar; ``reference_probs_of`` runs a
reference artifact on the evaluation images; ``parity_check`` compares two artifacts on
the same images under a ``Gate``. Writing reports is the application's job
(``edgeproof.app.bench``).

Example:
    >>> rows = bench_all(["m.tflite", "m.onnx"], BenchSettings(batch_sizes=(1, 32)))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.bench.one_artifact import bench_artifact, bench_batches, bench_isolated
from edgeproof.bench.derive import artifact_manifest, preprocessing_known
from edgeproof.bench.gate import Gate
from edgeproof.bench.measure import LatencyStats
from edgeproof.bench.parity import compare
from edgeproof.bench.row import BenchRow
from edgeproof.bench.runtimes import runtime_for, runtime_options
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.bench.stats import spread
from edgeproof.errors import RuntimeFailure, UsageError


def check_runtime_options(artifacts, settings: BenchSettings) -> None:
    """Every ``--runtime-option`` key must be taken by the runtime of some artifact.

    Example:
        >>> check_runtime_options(["m.onnx"], BenchSettings(runtime_options={"xnnpack": 0}))
        Traceback (most recent call last):
        ...
        edgeproof.errors.UsageError: Runtime option(s) xnnpack not taken by onnxruntime. Valid options: execution_mode (onnxruntime), graph_optimization (onnxruntime), inter_threads (onnxruntime), profile (onnxruntime).
    """
    names = set()
    for a in artifacts:
        try:
            names.add(settings.runtime or runtime_for(a))
        except RuntimeFailure:
            continue  # the artifact becomes a failed row with this message
    accepted = runtime_options(names)
    unknown = sorted(set(settings.runtime_options) - set(accepted))
    if unknown:
        valid = ", ".join(f"{k} ({', '.join(sorted(v))})" for k, v in sorted(accepted.items()))
        raise UsageError(f"Runtime option(s) {', '.join(unknown)} not taken by "
                         f"{', '.join(sorted(names)) or 'these artifacts'}. "
                         f"Valid options: {valid or 'none'}.")


def check_preprocessing(artifacts, preprocess: dict) -> None:
    """Accuracy needs the pixels each artifact expects: refuse files that cannot tell.

    Raises:
        UsageError: naming the files without a manifest or a visible scaling.
    """
    unknown = [a for a in dict.fromkeys(artifacts)
               if not preprocessing_known(artifact_manifest(a, preprocess))]
    if unknown:
        raise UsageError(f"{', '.join(Path(a).name for a in unknown)}: no manifest, and the "
                         "file does not show how it scales pixels; pass --preprocess "
                         "scale=...,offset=... (or drop --dataset to measure latency).")


def reference_probs_of(reference, data: EvalData, settings: BenchSettings = BenchSettings()):
    """The reference artifact's probabilities on ``data.images`` (no timing).

    Raises:
        RuntimeFailure: the reference could not run.
    """
    row, probs = bench_artifact(reference, settings.replace(latency=False), data)
    if not row.ok:
        raise RuntimeFailure(f"Reference {reference} failed: {row.error}")
    return probs


def bench_all(artifacts, settings: BenchSettings, data: EvalData | None = None,
              report_dir: str | Path = ".", in_process: bool = False,
              quiet: bool = False, repeat: int = 1) -> list[BenchRow]:
    """Every artifact at every batch size, under a rich progress bar (stderr).

    Args:
        in_process: measure in this process instead of a fresh worker per artifact.
        repeat: measure each artifact this many times, interleaved (A B C A B C …), each
            time in a fresh worker; its rows pool the timed calls and report the spread of
            the per-process p50s (``latency_ms.repeats``).
    """
    from rich.console import Console
    from rich.progress import Progress

    runs: dict[int, list[list[BenchRow]]] = {i: [] for i in range(len(artifacts))}
    with Progress(console=Console(stderr=True), transient=True, disable=quiet) as bar:
        task = bar.add_task("bench", total=len(artifacts) * repeat)
        for r in range(repeat):
            for i, a in enumerate(artifacts):
                bar.update(task, description=f"{Path(a).name}" + (f" ({r + 1}/{repeat})"
                                                                   if repeat > 1 else ""))
                run = bench_batches if in_process else bench_isolated
                # Accuracy and parity do not change between repeats: the first run has them.
                got, _ = run(a, settings, data if r == 0 else None, report_dir)
                runs[i].append(got)
                bar.advance(task)
    return [row for i in range(len(artifacts)) for row in merge_repeats(runs[i])]


def merge_repeats(runs: list[list[BenchRow]]) -> list[BenchRow]:
    """One artifact's rows from several runs: the first run's rows with latency over every
    run's timed calls, and ``latency_ms.repeats``, the per-run p50s and their range.

    Example:
        >>> merge_repeats([[BenchRow(status="failed", error="x")]])[0].error
        'x'
    """
    first = runs[0]
    if len(runs) == 1:
        return first
    failed = next((rows for rows in runs if not all(r.ok for r in rows)), None)
    if failed is not None:
        return failed
    out = []
    for k, row in enumerate(first):
        b = row.batch_size
        per_run = [rows[k].samples[b] for rows in runs]
        stats = LatencyStats.from_samples(np.concatenate(per_run), b, row.latency_ms["first_ms"])
        lat = {key: v for key, v in stats.to_dict().items()
               if key not in ("batch_size", "throughput")}
        lat["repeats"] = {**spread([np.median(s) for s in per_run]),
                          "threads": [rows[k].threads for rows in runs]}
        out.append(row.replace(latency_ms=lat, throughput_ips=round(stats.throughput, 2)))
    return out


def parity_check(reference, candidate, images, labels, gate: Gate,
                 preprocess: dict | None = None) -> dict:
    """Run ``reference`` and ``candidate`` (each on its runtime, preprocessed from its own
    manifest) on the same images; returns ``compare``'s numbers, ``n`` and the ``gate``
    (its limits, ``answer``: passes | fails | undecided, ``verdict`` with the bounds, and
    the rules not met as ``failures`` and ``undecided``).

    Example:
        >>> parity_check("m.keras", "m-int8.tflite", x, y, Gate(0.99, None))["gate"]["passed"]  # doctest: +SKIP
        True
    """
    settings = BenchSettings(latency=False, preprocess=dict(preprocess or {}))
    probs = {}
    for role, path in (("reference", reference), ("candidate", candidate)):
        row, probs[role] = bench_artifact(path, settings, EvalData(images, labels))
        if not row.ok:
            raise RuntimeFailure(f"{role} {path} failed: {row.error}")
    result = compare(probs["reference"], probs["candidate"], labels)
    result["n"] = int(len(labels))
    v = gate.verdict(result)
    not_met = list(v.reasons) if v.answer != "passes" else []
    result["gate"] = {**gate.to_dict(), "answer": v.answer, "passed": v.answer == "passes",
                      "failures": not_met if v.answer == "fails" else [],
                      "undecided": not_met if v.answer == "undecided" else [],
                      "verdict": v.to_dict()}
    return result
