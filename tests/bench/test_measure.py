"""The measurement method on fake callables and a fake clock: counts reached, every
statistic computed from exactly the timed samples, the bare-loop ratio computed from its
two p50s, and memory readings. Nothing here asserts how fast anything ran."""

from __future__ import annotations

import importlib
import importlib.util
import types

import numpy as np
import pytest

from edgeproof.bench import rss
from edgeproof.bench.measure import Measurement, bare_loop_check, measure


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


class FakeClock:
    """``perf_counter`` that moves only when a timed callable says how long it took."""

    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now

    def takes(self, seconds):
        """A callable that advances the clock by the next of ``seconds`` (cycled)."""
        seq, i = list(seconds), [0]

        def call():
            self.now += seq[i[0] % len(seq)]
            i[0] += 1
        return call


@pytest.fixture
def clock(monkeypatch):
    """The fake clock in place of ``time`` wherever the measurement loop reads it."""
    fake = FakeClock()
    patched = 0
    for name in ("edgeproof.bench.measure", "edgeproof.bench.timing"):
        if importlib.util.find_spec(name) is None:
            continue
        mod = importlib.import_module(name)
        if hasattr(mod, "time"):
            monkeypatch.setattr(mod, "time", types.SimpleNamespace(perf_counter=fake.perf_counter))
            patched += 1
    assert patched, "no module of the measurement reads time.perf_counter any more"
    return fake


def test_measure_counts_the_first_call_the_warmup_and_the_timed_runs():
    fn = Counter()
    s = measure(fn, batch_size=4, settings=Measurement(warmup_runs=3, warmup_seconds=0.0,
                                                       min_runs=20, min_seconds=0.0))
    assert s.n == 20 and fn.calls == 1 + 3 + 20  # first call + warm-up + timed runs
    assert 0 <= s.min <= s.p50 <= s.p90 <= s.p99
    assert s.batch_size == 4 and s.throughput == pytest.approx(4 * 1e3 / s.p50, rel=1e-6)


def test_every_statistic_comes_from_the_timed_samples(clock):
    """First call 50 ms, 2 warm-up runs, then 7 timed runs of known length: each number
    is numpy's on exactly those 7 samples (the first call and warm-up left out)."""
    timed = [0.004, 0.001, 0.002, 0.009, 0.003, 0.002, 0.005]
    fn = clock.takes([0.050, 0.020, 0.020] + timed)
    s = measure(fn, batch_size=8, settings=Measurement(warmup_runs=2, warmup_seconds=0.0,
                                                       min_runs=7, min_seconds=0.0))
    ms = np.asarray(timed) * 1e3
    assert s.n == 7 and s.first_ms == pytest.approx(50.0)
    assert s.std == pytest.approx(float(np.std(ms))) and s.std > 0
    assert s.mean == pytest.approx(float(ms.mean())) and s.min == pytest.approx(1.0)
    for q in (50, 90, 99):
        assert getattr(s, f"p{q}") == pytest.approx(float(np.percentile(ms, q)))
    assert s.throughput == pytest.approx(8 * 1e3 / float(np.median(ms)))
    d = s.to_dict()
    assert set(d) >= {"p50", "p90", "p99", "mean", "std", "min", "n", "batch_size",
                      "first_ms", "throughput"} and d["std"] == round(s.std, 4)


def test_measure_runs_until_min_duration_even_after_min_count(clock):
    s = measure(clock.takes([0.001]), settings=Measurement(min_runs=2, min_seconds=0.05,
                                                          warmup_runs=1, warmup_seconds=0.0))
    assert s.n in (50, 51)  # 1 ms runs until 50 ms have passed (float rounding: 50 or 51)


def test_warmup_runs_until_its_minimum_time(clock):
    fn = Counter()
    tick = clock.takes([0.01])

    def call():
        fn()
        tick()
    measure(call, settings=Measurement(warmup_runs=1, warmup_seconds=0.1, min_runs=3,
                                       min_seconds=0.0))
    assert fn.calls - 1 - 3 in (10, 11)  # warm-up: 10 ms runs until 100 ms have passed


def test_measure_stops_at_max_seconds(clock):
    s = measure(clock.takes([0.01]), settings=Measurement(min_runs=10_000, min_seconds=0.0,
                                                          warmup_runs=1, warmup_seconds=0.0,
                                                          max_seconds=0.05))
    assert s.n in (5, 6)  # 10 ms runs: stopped once more than 50 ms passed


class FakeRuntime:
    """A runtime whose edgeproof call and bare call take the given times on the clock."""

    name, bare_call_label = "litert", "interpreter.invoke()"

    def __init__(self, clock, ours, bare):
        self.predicts = self.bare = 0
        self._ours, self._bare = clock.takes([ours]), clock.takes([bare])

    def timed_call(self, x):
        def call():
            self.predicts += 1
            self._ours()
        return call

    def bare_call(self, x):
        def call():
            self.bare += 1
            self._bare()
        return call


@pytest.mark.parametrize("ours,bare,within", [(0.00102, 0.001, True), (0.002, 0.001, False)])
def test_bare_loop_ratio_is_edgeproof_p50_over_bare_p50(clock, ours, bare, within):
    rt = FakeRuntime(clock, ours, bare)
    r = bare_loop_check(rt, np.zeros((2, 3), np.float32),
                        Measurement(min_runs=12, min_seconds=0.0, warmup_runs=1,
                                    warmup_seconds=0.0))
    assert set(r) >= {"edgeproof_p50_ms", "bare_p50_ms", "ratio", "pairs", "measure_p50_ms",
                      "bare", "within_5_percent"}
    assert r["edgeproof_p50_ms"] == pytest.approx(ours * 1e3)
    assert r["bare_p50_ms"] == pytest.approx(bare * 1e3)
    assert r["measure_p50_ms"] == pytest.approx(ours * 1e3)
    assert r["ratio"] == pytest.approx(ours / bare, abs=1e-4)
    assert r["within_5_percent"] is within
    assert r["bare"] == "interpreter.invoke()" and r["pairs"] == 12
    # measure(): first call + warm-up + 12 runs; then 12 interleaved pairs
    assert rt.predicts == 1 + 1 + 12 + 12 and rt.bare == 1 + 12


def test_bare_loop_with_a_zero_bare_time_has_no_ratio(clock):
    rt = FakeRuntime(clock, 0.001, 0.0)
    r = bare_loop_check(rt, np.zeros((1, 3), np.float32),
                        Measurement(min_runs=3, min_seconds=0.0, warmup_runs=1,
                                    warmup_seconds=0.0))
    assert r["ratio"] is None and r["within_5_percent"] is False and r["pairs"] == 10


def test_memory_readings_and_watch():
    before = rss.rss_mb()
    if before is None:
        pytest.skip("no /proc on this platform")
    with rss.MemoryWatch() as m:
        buf = np.ones(40 * 2**20, np.uint8)  # 40 MiB touched
    res = m.result()
    assert res["rss_before_mb"] > 0 and res["peak_delta_mb"] >= 30
    assert rss.peak_mb() >= rss.rss_mb() - 1
    del buf
