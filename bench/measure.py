"""One latency method for every runtime.

Inputs are prepared before timing; the timed call is the runtime's predict on a
pre-allocated batch. Warm-up runs until both a minimum count and a minimum time have
passed, then timed runs until both a minimum count and a minimum duration are reached
(defaults comparable to TFLite's benchmark_model: 50 runs, 1 s).

``bare_loop_check`` compares that timed call with a bare loop around the runtime's own
call (``interpreter.invoke()``, ``session.run()``, the ``tf.function``) on the same
prepared input (``edgeproof bench --bare-loop``). Calls alternate one by one so that
load from other processes hits both sides alike; the goal is a ratio within 1.05.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Measurement:
    """How long to warm up and how long to time (defaults comparable to TFLite's
    benchmark_model: 50 runs and 1 s).

    Args:
        warmup_runs, warmup_seconds: both must be reached before timing starts.
        min_runs, min_seconds: both must be reached before timing stops
            (unless ``max_seconds`` of timed runs have passed).

    Example:
        >>> Measurement(min_runs=10).min_seconds
        1.0
    """

    min_runs: int = 50
    min_seconds: float = 1.0
    warmup_runs: int = 5
    warmup_seconds: float = 0.2
    max_seconds: float = 30.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LatencyStats:
    """Latency of one call, in milliseconds, over ``n`` timed runs of ``batch_size`` images."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    n: int
    batch_size: int
    first_ms: float
    throughput: float

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def measure(fn: Callable[[], object], *, batch_size: int = 1,
            settings: Measurement = Measurement()) -> LatencyStats:
    """Time ``fn()`` (one inference on a prepared batch) as ``settings`` say.

    Example:
        >>> s = measure(lambda: sum(range(100)), settings=Measurement(min_runs=10,
        ...                                                           min_seconds=0.01))
        >>> s.n >= 10
        True
    """
    warmup_runs, warmup_seconds = settings.warmup_runs, settings.warmup_seconds
    min_runs, min_seconds, max_seconds = settings.min_runs, settings.min_seconds, \
        settings.max_seconds
    t0 = time.perf_counter()
    fn()
    first_ms = (time.perf_counter() - t0) * 1e3
    start, runs = time.perf_counter(), 0
    while runs < warmup_runs or time.perf_counter() - start < warmup_seconds:
        fn()
        runs += 1
    times = []
    clock = time.perf_counter
    begin = clock()
    while len(times) < min_runs or clock() - begin < min_seconds:
        t = clock()
        fn()
        times.append(clock() - t)
        if clock() - begin > max_seconds and len(times) >= 3:
            break
    ms = np.asarray(times) * 1e3
    mean = float(ms.mean())
    return LatencyStats(p50=float(np.percentile(ms, 50)), p90=float(np.percentile(ms, 90)),
                        p99=float(np.percentile(ms, 99)), mean=mean, std=float(ms.std()),
                        min=float(ms.min()), n=int(len(ms)), batch_size=batch_size,
                        first_ms=first_ms, throughput=batch_size * 1e3 / float(np.median(ms)))


def bare_loop_check(rt, x: np.ndarray, settings: Measurement = Measurement()) -> dict:
    """Compare edgeproof's timed call on ``rt`` with a bare loop around the runtime's own call.

    First edgeproof's own ``measure()``; then the same number of *interleaved* pairs (one
    edgeproof call, one bare call, each timed), so that load from other processes falls on
    both sides alike. The ratio is the p50 of edgeproof's calls over the p50 of the bare
    calls from the interleaved pairs.

    Args:
        rt: a loaded runtime.
        x: a prepared batch (what ``prepare()`` returns).
        settings: edgeproof's measurement settings.

    Returns:
        ``{"edgeproof_p50_ms", "bare_p50_ms", "ratio", "pairs", "measure_p50_ms", "bare",
        "within_5_percent"}``.

    Example:
        >>> bare_loop_check(rt, prepare(images[:1], rt.manifest))["ratio"]  # doctest: +SKIP
        1.01
    """
    ours_call = rt.timed_call(x)
    s = measure(ours_call, batch_size=len(x), settings=settings)
    bare_call, clock = rt.bare_call(x), time.perf_counter
    bare_call()
    ours, bare = [], []
    for _ in range(max(s.n, 10)):
        t = clock()
        ours_call()
        t1 = clock()
        bare_call()
        t2 = clock()
        ours.append(t1 - t)
        bare.append(t2 - t1)
    e = float(np.percentile(np.asarray(ours) * 1e3, 50))
    b = float(np.percentile(np.asarray(bare) * 1e3, 50))
    return {"edgeproof_p50_ms": round(e, 4), "bare_p50_ms": round(b, 4),
            "ratio": round(e / b, 4) if b > 0 else None, "pairs": len(ours),
            "measure_p50_ms": round(s.p50, 4), "bare": rt.bare_call_label,
            "within_5_percent": bool(b > 0 and e / b <= 1.05)}
