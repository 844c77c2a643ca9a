"""The ladder stops only on a useful pass: a candidate that passes the gate but is not
faster than the fastest float candidate (intervals apart) is recorded and the ladder goes
on; the first useful pass ends its family, and every rung after it is recorded as not
tried, saying why. (Rungs are faked: this is the search's logic, not a conversion.)"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import edgeproof.app.ladder as ladder
from edgeproof.app.candidate import Candidate, SplitNumbers
from edgeproof.app.ladder import Rung
from edgeproof.app.optimize import OptimizeConfig
from edgeproof.datasets import Dataset
from edgeproof.manifest import Preprocessing

P50 = {"tflite-fp32": (1.0, [0.95, 1.05]), "tflite-int16x8": (30.0, [29.0, 31.0]),
       "tflite-dynamic": (0.4, [0.38, 0.42]), "tflite-int8": (0.2, [0.19, 0.21])}


def _fake_try(rung, model, search_ds, ref_val, cfg, ctx_for, sens, out):
    p50, ci = P50[rung.format]
    return Candidate(rung.label, rung.family, rung.format, status="ok", passed=True,
                     reason="passes on validation", artifact=rung.label, runtime="litert",
                     latency_ms={"p50": p50, "p50_ci": ci}, size_bytes=1,
                     validation=SplitNumbers(0.9, 0.0, 1.0))


def _search(monkeypatch, rungs, exhaustive=False):
    monkeypatch.setattr(ladder, "_try", _fake_try)
    monkeypatch.setattr(ladder, "ladders", lambda cfg: rungs)
    monkeypatch.setattr(ladder, "reference_probs", lambda *a, **k: np.zeros((4, 2)))
    z = np.zeros((4, 2, 2, 1), np.uint8)
    y = np.zeros(4, np.int64)
    ds = Dataset("d", ["a", "b"], z, y, z, y, z[:0], y[:0], Preprocessing(size=[2, 2]))
    ctx = SimpleNamespace(preprocessing=ds.preprocessing)
    cands, stopped = ladder.search(None, lambda n: ctx, ds,
                                   OptimizeConfig("m", "d", "o", exhaustive=exhaustive), None)
    return {c.rung: c.to_dict() for c in cands}, stopped


RUNGS = {"float": [Rung("float", "tflite-fp32", "tflite-fp32")],
         "tflite-int": [Rung("tflite-int", "int16x8", "tflite-int16x8"),
                        Rung("tflite-int", "dynamic", "tflite-dynamic"),
                        Rung("tflite-int", "int8", "tflite-int8")]}


def test_a_slow_passing_rung_does_not_stop_the_ladder(monkeypatch):
    cands, stopped = _search(monkeypatch, RUNGS)
    assert not stopped
    assert cands["int16x8"]["passed"] and "not faster than tflite-fp32" in cands["int16x8"]["reason"]
    assert cands["dynamic"]["status"] == "ok"  # tried after the slow pass
    assert cands["int8"]["status"] == "not tried"
    assert 'stopped at "dynamic"' in cands["int8"]["reason"]
    assert "faster than tflite-fp32" in cands["int8"]["reason"]


def test_exhaustive_tries_every_rung(monkeypatch):
    cands, _ = _search(monkeypatch, RUNGS, exhaustive=True)
    assert all(c["status"] == "ok" for c in cands.values())


def test_a_tie_with_the_float_model_is_not_useful(monkeypatch):
    monkeypatch.setitem(P50, "tflite-dynamic", (0.98, [0.9, 1.02]))  # overlaps fp32's interval
    cands, _ = _search(monkeypatch, RUNGS)
    assert "not faster" in cands["dynamic"]["reason"] and cands["int8"]["status"] == "ok"
