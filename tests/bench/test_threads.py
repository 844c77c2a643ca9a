"""Threads auto-tuned: the sweep's choice (canned measurements, no timing asserted), the
row's record of it, and TensorFlow settings measured in fresh processes."""

from __future__ import annotations

import pytest

from edgeproof.bench import threads as threads_mod
from edgeproof.bench.threads import sweep_threads, thread_candidates


class _InProcess:
    threads_per_process = False


class _PerProcess:
    threads_per_process = True


@pytest.fixture
def canned(monkeypatch):
    """probe_p50 returns fixed numbers per setting; run_isolated runs in-process."""
    calls = []

    def fake_probe(open_runtime, threads, x):
        calls.append(threads)
        return {1: 5.0, 2: 3.0, 4: 3.0, None: 4.0}[threads]

    monkeypatch.setattr(threads_mod, "probe_p50", fake_probe)
    monkeypatch.setattr(threads_mod, "run_isolated",
                        lambda fn, *a, **k: ("isolated", fake_probe(None, a[3], None))[1])
    return calls


def test_candidates_cover_one_to_the_cores_and_the_default():
    assert thread_candidates(1) == [1, None]
    assert thread_candidates(2) == [1, 2, None]
    assert thread_candidates(8) == [1, 2, 4, 8, None]


def test_sweep_picks_the_fastest_and_breaks_ties_towards_fewer_threads(canned):
    got = sweep_threads(_InProcess, "m.tflite", None, [0], {}, candidates=[1, 2, 4, None])
    assert got["threads"] == 2  # 2 and 4 tie at 3.0 ms: fewer threads win
    assert got["p50_ms"] == {"1": 5.0, "2": 3.0, "4": 3.0, "default": 4.0}
    assert canned == [1, 2, 4, None]


def test_tensorflow_settings_are_measured_in_fresh_processes(canned, monkeypatch):
    spawned = []
    real = threads_mod.run_isolated
    monkeypatch.setattr(threads_mod, "run_isolated",
                        lambda fn, *a, **k: spawned.append(a[3]) or real(fn, *a, **k))
    got = sweep_threads(_PerProcess, "m.keras", None, [0], {}, candidates=[1, 2, None])
    assert spawned == [1, 2]  # its default is the core count: not measured twice
    assert got["threads"] == 2


def test_rows_record_the_threads_used_and_the_sweep(tiny_exports):
    from edgeproof.bench.core import bench_batches

    fast = {"min_runs": 3, "min_seconds": 0.0, "warmup_runs": 1, "warmup_seconds": 0.0}
    auto, _ = bench_batches(tiny_exports["tflite-fp32"], measure_kw=fast)
    sweep = auto[0]["thread_sweep"]
    assert auto[0]["status"] == "ok" and set(sweep["p50_ms"]) >= {"1", "default"}
    assert auto[0]["threads"] == ("default" if sweep["threads"] is None else sweep["threads"])
    assert auto[0]["runtime_details"]["num_threads"] == (sweep["threads"] or "default")
    fixed, _ = bench_batches(tiny_exports["tflite-fp32"], threads=1, measure_kw=fast)
    assert fixed[0]["threads"] == 1 and fixed[0]["thread_sweep"] is None
