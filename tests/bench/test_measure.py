"""The measurement method on fake callables: counts reached, stats sane (no timing asserts)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.bench import memory
from edgeproof.bench.measure import bare_loop_check, measure
from edgeproof.plots import pareto_front


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


def test_measure_reaches_min_runs_and_min_seconds():
    fn = Counter()
    s = measure(fn, batch_size=4, warmup_runs=3, warmup_seconds=0.0, min_runs=20, min_seconds=0.05)
    assert s.n >= 20
    # first call + warm-up + timed runs, all on the same callable
    assert fn.calls >= 1 + 3 + s.n
    assert 0 <= s.min <= s.p50 <= s.p90 <= s.p99
    assert s.std >= 0 and s.mean > 0
    assert s.throughput == pytest.approx(4 * 1e3 / s.p50, rel=1e-6)
    assert s.batch_size == 4


def test_measure_runs_until_min_duration_even_after_min_count():
    import time

    s = measure(lambda: time.sleep(0.001), min_runs=2, min_seconds=0.05, warmup_runs=1,
                warmup_seconds=0.0)
    assert s.n > 2  # 2 runs of 1 ms cannot fill 50 ms


def test_measure_stops_at_max_seconds():
    import time

    s = measure(lambda: time.sleep(0.01), min_runs=10_000, min_seconds=0.0, warmup_runs=1,
                warmup_seconds=0.0, max_seconds=0.05)
    assert 3 <= s.n < 10_000


def test_bare_loop_check_on_a_fake_runtime():
    class Fake:
        name, bare_call_label = "litert", "interpreter.invoke()"

        def __init__(self):
            self.predicts = self.bare = 0

        def timed_call(self, x):
            def call():
                self.predicts += 1
                return x
            return call

        def bare_call(self, x):
            def call():
                self.bare += 1
            return call

    rt = Fake()
    r = bare_loop_check(rt, np.zeros((2, 3), np.float32), min_runs=10, min_seconds=0.0,
                        warmup_runs=1, warmup_seconds=0.0)
    assert r["bare"] == "interpreter.invoke()" and r["pairs"] >= 10
    assert r["ratio"] is None or r["ratio"] > 0
    assert rt.bare >= r["pairs"] and rt.predicts >= 10 + r["pairs"]


def test_memory_readings_and_watch():
    before = memory.rss_mb()
    if before is None:
        pytest.skip("no /proc on this platform")
    with memory.MemoryWatch() as m:
        buf = np.ones(40 * 2**20, np.uint8)  # 40 MiB touched
    res = m.result()
    assert res["rss_before_mb"] > 0 and res["peak_delta_mb"] >= 30
    assert memory.peak_mb() >= memory.rss_mb() - 1
    del buf


def test_pareto_front():
    pts = [(1.0, 0.80), (2.0, 0.90), (3.0, 0.85), (0.5, 0.70), (2.5, 0.95)]
    assert pareto_front(pts) == [3, 0, 1, 4]
    assert pareto_front([]) == []
