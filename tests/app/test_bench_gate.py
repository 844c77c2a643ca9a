"""``run_bench`` uses the one gate: with only ``min_agreement`` given the report's gate
section and its recommendation agree (accuracy is checked by neither), the gate is enforced
only when a limit was given, and the default gate still picks the recommendation.

The measurement itself is replaced by fixed rows (bench_all and the evaluation data are
stubbed), so these tests check the wiring of the gate, not a runtime."""

from __future__ import annotations

import types

import pytest

from edgeproof.app import bench as app_bench
from edgeproof.app.bench import BenchConfig, run_bench
from edgeproof.bench.gate import Gate
from edgeproof.bench.row import BenchRow


def _rows():
    """An int8 file that agrees (99.5%) but lost 2 accuracy points, at two batch sizes."""
    return [BenchRow(format="tflite-int8", runtime="litert", status="ok", batch_size=b,
                     artifact="m-int8.tflite", size_bytes=100, accuracy=0.88,
                     accuracy_delta=-0.02, top1_agreement=0.995, latency_ms={"p50": 0.4 * b},
                     threads=1, threads_default=False) for b in (1, 8)]


@pytest.fixture
def stubbed(monkeypatch):
    manifest = types.SimpleNamespace(source={"model_name": "m", "sha256": "0" * 64},
                                     input=types.SimpleNamespace(shape=[-1, 16, 16, 1]))
    monkeypatch.setattr(app_bench, "check_preprocessing", lambda *a, **k: None)
    monkeypatch.setattr(app_bench, "_evaluation", lambda cfg, say: (
        {"name": "digits", "num_classes": 10, "class_names": None, "split": "test"}, None))
    monkeypatch.setattr(app_bench, "bench_all", lambda *a, **k: _rows())
    monkeypatch.setattr(app_bench, "artifact_manifest", lambda *a, **k: manifest)
    monkeypatch.setattr(app_bench, "environment", lambda: {})


def _bench(**kw):
    cfg = BenchConfig(["m-int8.tflite"], dataset="digits", reference="m.keras", **kw)
    return cfg, run_bench(cfg)[0]


def test_only_min_agreement_given_checks_agreement_only(stubbed):
    cfg, report = _bench(min_agreement=0.99)
    assert cfg.gate == Gate(0.99, None) and cfg.enforced
    assert report["gate"] == {**Gate(0.99, None).to_dict(), "answer": "passes",
                              "passed": True, "failures": [], "undecided": [], "enforced": True}
    assert report["gate"]["max_accuracy_drop"] is None  # not checked
    # the recommendation is judged by the same gate: no "gate passed" beside "none passes"
    assert report["recommendation"]["format"] == "tflite-int8"
    assert report["recommendation_note"] is None


def test_a_given_accuracy_limit_fails_and_names_the_rule(stubbed):
    _, report = _bench(min_agreement=0.99, max_accuracy_drop=0.01)
    assert report["gate"]["passed"] is False and report["gate"]["enforced"] is True
    assert report["gate"]["failures"] == [
        "tflite-int8/litert: accuracy -2.00 pt, more than 1.00 pt down"]  # once, not per batch
    assert report["recommendation"] is None
    assert "accuracy drop <= 1 pt" in report["recommendation_note"]


def test_no_limit_given_the_default_gate_recommends_but_is_not_enforced(stubbed):
    cfg, report = _bench()
    assert cfg.gate == Gate() and not cfg.enforced
    assert report["gate"]["enforced"] is False and report["gate"]["passed"] is False
    assert report["recommendation"] is None and "closest: tflite-int8/litert" in \
        report["recommendation_note"]
