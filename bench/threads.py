"""Threads, auto-tuned: a short sweep over thread counts before the timed runs.

Runtimes disagree on their defaults (LiteRT runs one thread unless told otherwise,
ONNX Runtime uses every physical core, TensorFlow every core), so comparing them at
their defaults compares thread counts, not runtimes. ``threads="auto"`` (the default)
measures 1, 2, 4, … up to the cores, plus the runtime's own default, each for a fraction
of a second, and the timed runs use the fastest. The row records the choice and the sweep.

LiteRT and ONNX Runtime take a thread count per interpreter / session, so the sweep
re-creates one per setting in this process. TensorFlow fixes its thread pools once per
process, so each setting of the Keras runtime is measured in its own spawned process.

Example:
    >>> thread_candidates(4)
    [1, 2, 4, None]
"""

from __future__ import annotations

import time

from dataclasses import dataclass

from edgeproof.bench.isolate import run_isolated
from edgeproof.bench.measure import Measurement, measure
from edgeproof.bench.timing import cores, fastest, thread_candidates  # noqa: F401  (re-exported)
from edgeproof.errors import UsageError

SWEEP_MEASURE = Measurement(warmup_runs=3, warmup_seconds=0.05, min_runs=10, min_seconds=0.25)


@dataclass(frozen=True)
class Threads:
    """How many threads a runtime gets: ``auto`` (a sweep picks), ``default`` (the
    runtime's own choice) or a fixed ``count``; the one type from the flag to the row.

    Example:
        >>> Threads.parse("auto").mode, Threads.parse("3").count, str(Threads.parse("default"))
        ('auto', 3, 'default')
    """

    mode: str = "auto"
    count: int | None = None

    @classmethod
    def parse(cls, text) -> "Threads":
        """``auto``, ``default``, an int >= 1 (or a Threads, returned as it is)."""
        if isinstance(text, Threads):
            return text
        value = str(text).strip().lower()
        if value in ("auto", "default"):
            return cls(value)
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise UsageError(f"--threads must be auto, default or an int >= 1; got {text!r}.")
        return cls("fixed", n)

    @property
    def fixed(self) -> int | None:
        """The count to pass a runtime before any sweep (None: its default)."""
        return self.count if self.mode == "fixed" else None

    def __str__(self) -> str:
        return str(self.count) if self.mode == "fixed" else self.mode


AUTO, DEFAULT = Threads("auto"), Threads("default")


def probe_p50(open_runtime, threads, x) -> float:
    """p50 (ms) of ``x`` through a runtime opened with ``threads``, over a short measurement.

    ``open_runtime(threads)`` returns an unloaded runtime; it is loaded, timed and closed.
    """
    with open_runtime(threads) as rt:
        return measure(rt.timed_call(x), batch_size=len(x), settings=SWEEP_MEASURE).p50


def _probe_in_fresh_process(runtime_cls, artifact, manifest, threads, x, options) -> float:
    # Module level: spawned workers import it by name.
    return probe_p50(lambda t: runtime_cls(artifact, manifest, threads=t, **options), threads, x)


def sweep_threads(runtime_cls, artifact, manifest, x, options: dict,
                  candidates: list | None = None) -> dict:
    """Measure each thread setting on the prepared batch ``x``; returns the choice.

    Returns ``{"threads": best (int, or None for the runtime's default), "p50_ms":
    {setting: p50}, "batch_size", "seconds"}``; ties go to fewer threads. Settings are
    keyed ``"1"``, ``"2"``, …, ``"default"``.

    Example:
        >>> sweep_threads(LiteRTRuntime, "m.tflite", manifest, x, {})["threads"]  # doctest: +SKIP
        2
    """
    t0 = time.perf_counter()
    candidates = thread_candidates() if candidates is None else candidates
    if runtime_cls.threads_per_process:
        candidates = [c for c in candidates if c is not None]  # its default is the core count
    results = {}
    for c in candidates:
        if runtime_cls.threads_per_process:
            p50 = run_isolated(_probe_in_fresh_process, runtime_cls, artifact, manifest, c, x,
                               options)
        else:
            p50 = probe_p50(lambda t: runtime_cls(artifact, manifest, threads=t, **options), c, x)
        results[c] = p50
    return {"threads": fastest(results), "batch_size": int(len(x)),
            "p50_ms": {("default" if c is None else str(c)): round(p, 4)
                       for c, p in results.items()},
            "seconds": round(time.perf_counter() - t0, 2)}
