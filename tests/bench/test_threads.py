"""Threads, one type end to end: parsing ``--threads``, the auto sweep's choice (canned
measurements, no timing asserted), TensorFlow settings measured in fresh processes, and
the row's record of the count that ran and whether it was the runtime's default."""

from __future__ import annotations

import pytest

from edgeproof.bench import threads as threads_mod
from edgeproof.bench.measure import Measurement
from edgeproof.bench.settings import BenchSettings
from edgeproof.bench.threads import AUTO, DEFAULT, Threads, sweep_threads, thread_candidates
from edgeproof.errors import UsageError


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


def test_threads_parse_into_one_type():
    assert Threads.parse("auto") == AUTO and Threads.parse(" Default ") == DEFAULT
    t = Threads.parse("3")
    assert (t.mode, t.count, t.fixed, str(t)) == ("fixed", 3, 3, "3")
    assert AUTO.fixed is None and DEFAULT.fixed is None and str(AUTO) == "auto"
    assert Threads.parse(t) is t
    for bad in ("0", "-2", "many", "1.5"):
        with pytest.raises(UsageError, match="--threads must be auto, default or an int >= 1"):
            Threads.parse(bad)


def test_settings_take_threads_as_text_or_type():
    assert BenchSettings(threads="2").threads == Threads("fixed", 2)
    assert BenchSettings().threads == AUTO
    assert BenchSettings(threads="default").record()["threads"] == "default"


@pytest.mark.slow
def test_rows_record_the_threads_used_and_the_sweep(tiny_exports):
    """Every row records the count that ran (an int) and whether it was the runtime's
    default: after an auto sweep, a fixed count, and the runtime's own choice."""
    from edgeproof.bench.one_artifact import bench_batches
    from edgeproof.bench.runtimes.litert import LiteRTRuntime

    fast = Measurement(min_runs=3, min_seconds=0.0, warmup_runs=1, warmup_seconds=0.0)
    tflite = tiny_exports["tflite-fp32"]
    (auto,), _ = bench_batches(tflite, BenchSettings(measurement=fast))
    sweep = auto.thread_sweep
    assert auto.status == "ok" and set(sweep["p50_ms"]) >= {"1", "default"}
    assert auto.threads_default is (sweep["threads"] is None)
    assert auto.threads == (LiteRTRuntime.default_threads() if sweep["threads"] is None
                            else sweep["threads"])
    assert isinstance(auto.threads, int)
    assert auto.runtime_details["num_threads"] == (sweep["threads"] or "default")
    (fixed,), _ = bench_batches(tflite, BenchSettings(threads="1", measurement=fast))
    assert (fixed.threads, fixed.threads_default, fixed.thread_sweep) == (1, False, None)
    (own,), _ = bench_batches(tflite, BenchSettings(threads=DEFAULT, measurement=fast))
    assert (own.threads, own.threads_default, own.thread_sweep) == (1, True, None)
    assert own.runtime_details["num_threads"] == "default"
    assert own.to_dict()["threads"] == 1 and own.to_dict()["threads_default"] is True
