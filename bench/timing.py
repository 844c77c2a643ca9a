"""The timing loop itself: standard library and numpy only.

This module imports nothing from edgeproof, so the device agent (``bench/agent.py``)
ships it over SSH unchanged and a board that has only a runtime and numpy times its
calls exactly as this machine does: warm-up until both a minimum count and a minimum
time have passed, then timed calls until both a minimum count and a minimum duration are
reached (defaults comparable to TFLite's benchmark_model: 50 runs, 1 s).

Example:
    >>> first_ms, ms = time_calls(lambda: sum(range(100)), Measurement(min_runs=10,
    ...                                                                min_seconds=0.01))
    >>> len(ms) >= 10
    True
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Measurement:
    """How long to warm up and how long to time.

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


def time_calls(fn, settings: Measurement = Measurement()) -> tuple[float, np.ndarray]:
    """Time ``fn()``: (the first call's ms, each timed call's ms after the warm-up)."""
    clock = time.perf_counter
    t0 = clock()
    fn()
    first_ms = (clock() - t0) * 1e3
    start, runs = clock(), 0
    while runs < settings.warmup_runs or clock() - start < settings.warmup_seconds:
        fn()
        runs += 1
    times = []
    begin = clock()
    while len(times) < settings.min_runs or clock() - begin < settings.min_seconds:
        t = clock()
        fn()
        times.append(clock() - t)
        if clock() - begin > settings.max_seconds and len(times) >= 3:
            break
    return first_ms, np.asarray(times) * 1e3


def cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_candidates(n_cores: int | None = None) -> list[int | None]:
    """1, 2, 4, … (powers of two below the core count), the core count, then None (the
    runtime's own default).

    Example:
        >>> thread_candidates(6)
        [1, 2, 4, 6, None]
    """
    n = n_cores or cores()
    out, t = [], 1
    while t < n:
        out.append(t)
        t *= 2
    return out + [n, None]


def fastest(p50_by_threads: dict) -> int | None:
    """The thread setting with the lowest p50; ties go to fewer threads (None, the
    runtime's default, counts as many).

    Example:
        >>> fastest({1: 0.5, 2: 0.3, None: 0.3})
        2
    """
    return sorted(p50_by_threads, key=lambda c: (round(p50_by_threads[c], 4), c or 1 << 16))[0]
