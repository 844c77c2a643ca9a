"""The overhead check: edgekit's timed call against a bare loop around the runtime's own
call (``interpreter.invoke()``, ``session.run()``, the ``tf.function``), same process,
same prepared input.

Calls alternate edgekit / bare one by one so that load from other processes hits both
sides alike; the goal is a ratio edgekit p50 / bare p50 within 1.05.
"""

from __future__ import annotations

import time

import numpy as np

from bench.measure import measure


def bare_loop(call, runs: int, warmup: int = 3) -> float:
    """p50 in ms of ``runs`` calls of ``call`` in the plainest loop there is.

    Example:
        >>> bare_loop(lambda: None, 20) >= 0
        True
    """
    for _ in range(warmup):
        call()
    clock, times = time.perf_counter, []
    for _ in range(runs):
        t = clock()
        call()
        times.append(clock() - t)
    return float(np.percentile(np.asarray(times) * 1e3, 50))


def raw_check(rt, x: np.ndarray, min_runs: int = 50, min_seconds: float = 1.0,
              warmup_runs: int = 5, warmup_seconds: float = 0.2) -> dict:
    """Compare edgekit's timed call on ``rt`` with a bare loop around the runtime's own call.

    First edgekit's own ``measure()``; then the same number of *interleaved* pairs (one
    edgekit call, one bare call, each timed), so that load from other processes falls on
    both sides alike. The ratio is the p50 of edgekit's calls over the p50 of the bare
    calls from the interleaved pairs.

    Args:
        rt: a loaded runtime.
        x: a prepared batch (what ``prepare()`` returns).
        min_runs, min_seconds, warmup_runs, warmup_seconds: edgekit's measurement settings.

    Returns:
        ``{"edgekit_p50_ms", "bare_p50_ms", "ratio", "pairs", "measure_p50_ms", "bare",
        "within_5_percent"}``.

    Example:
        >>> raw_check(rt, prepare(images[:1], rt.manifest))["ratio"]  # doctest: +SKIP
        1.01
    """
    s = measure(lambda: rt._predict(x), batch_size=len(x), min_runs=min_runs,
                min_seconds=min_seconds, warmup_runs=warmup_runs, warmup_seconds=warmup_seconds)
    bare_call, ours_call, clock = rt.bare_call(x), (lambda: rt._predict(x)), time.perf_counter
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
    what = {"litert": "interpreter.invoke()", "onnxruntime": "session.run()"}.get(rt.name,
                                                                                   "tf.function call")
    return {"edgekit_p50_ms": round(e, 4), "bare_p50_ms": round(b, 4),
            "ratio": round(e / b, 4) if b > 0 else None, "pairs": len(ours),
            "measure_p50_ms": round(s.p50, 4), "bare": what,
            "within_5_percent": bool(b > 0 and e / b <= 1.05)}
