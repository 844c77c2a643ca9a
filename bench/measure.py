"""One latency method for every runtime.

Inputs are prepared before timing; the timed call is the runtime's predict on a
pre-allocated batch, timed by ``bench.timing`` (warm-up, then at least 50 runs and 1 s).
``LatencyStats`` turns the samples into percentiles, each p50 and p90 with its 95%
confidence interval (``bench.stats``).

``bare_loop_check`` compares that timed call with a bare loop around the runtime's own
call (``interpreter.invoke()``, ``session.run()``, the ``tf.function``) on the same
prepared input (``edgeproof bench --bare-loop``). Calls alternate one by one so that
load from other processes hits both sides alike; the goal is a ratio within 1.05.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from edgeproof.bench.stats import quantile_ci
from edgeproof.bench.timing import Measurement, time_calls


@dataclass
class LatencyStats:
    """Latency of one call, in milliseconds, over ``n`` timed runs of ``batch_size`` images;
    ``p50_ci`` and ``p90_ci`` are 95% confidence intervals (``bench.stats``)."""

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
    p50_ci: tuple = ()
    p90_ci: tuple = ()
    samples: np.ndarray | None = field(default=None, repr=False)  # not in to_dict

    @classmethod
    def from_samples(cls, ms, batch_size: int = 1, first_ms: float = 0.0) -> "LatencyStats":
        """Percentiles and intervals of timed calls ``ms`` (milliseconds).

        Example:
            >>> s = LatencyStats.from_samples(np.arange(1.0, 101.0))
            >>> s.p50, s.p50_ci
            (50.5, (40.0, 61.0))
        """
        ms = np.asarray(ms, dtype=np.float64)
        return cls(p50=float(np.percentile(ms, 50)), p90=float(np.percentile(ms, 90)),
                   p99=float(np.percentile(ms, 99)), mean=float(ms.mean()), std=float(ms.std()),
                   min=float(ms.min()), n=int(len(ms)), batch_size=batch_size,
                   first_ms=first_ms, throughput=batch_size * 1e3 / float(np.median(ms)),
                   p50_ci=quantile_ci(ms, 0.5), p90_ci=quantile_ci(ms, 0.9), samples=ms)

    def to_dict(self) -> dict:
        def r(v):
            return round(v, 4) if isinstance(v, float) else v
        d = {k: r(v) for k, v in asdict(self).items() if k not in ("samples", "p50_ci", "p90_ci")}
        d["p50_ci"], d["p90_ci"] = [r(v) for v in self.p50_ci], [r(v) for v in self.p90_ci]
        return d


def measure(fn: Callable[[], object], *, batch_size: int = 1,
            settings: Measurement = Measurement()) -> LatencyStats:
    """Time ``fn()`` (one inference on a prepared batch) as ``settings`` say.

    Example:
        >>> s = measure(lambda: sum(range(100)), settings=Measurement(min_runs=10,
        ...                                                           min_seconds=0.01))
        >>> s.n >= 10 and s.p50_ci[0] <= s.p50 <= s.p50_ci[1]
        True
    """
    first_ms, ms = time_calls(fn, settings)
    return LatencyStats.from_samples(ms, batch_size, first_ms)


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
