"""Parity numbers are right on known values, every spine export agrees with Keras, the
gate catches a broken export, and "not proven" has its own exit code (4) in ``parity``
and in export's check (tests on the tiny exports are slow)."""

import dataclasses
import json

import numpy as np
import pytest

from edgeproof.app.export_and_check import ExportResult
from edgeproof.bench.one_artifact import bench_artifact
from edgeproof.bench.gate import Gate
from edgeproof.bench.parity import chance_warning, compare
from edgeproof.bench.row import BenchRow
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.errors import GateFailed, GateUndecided
from edgeproof.manifest import find_manifest
from tests.helpers import run_cli

CHECK = BenchSettings(latency=False)


def test_compare_known_values():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    cand = np.array([[0.8, 0.2], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    y = np.array([0, 1, 0, 0])
    r = compare(ref, cand, y)
    assert r["top1_agreement"] == 0.75
    assert r["max_abs_diff"] == pytest.approx(0.2)
    assert r["accuracy"] == 0.5 and r["reference_accuracy"] == 0.75
    assert r["accuracy_delta"] == pytest.approx(-0.25)
    assert r["per_class_accuracy_delta"] == pytest.approx([-1 / 3, 0.0])
    assert r["kl_divergence"] > 0
    assert compare(ref, ref, y)["kl_divergence"] == pytest.approx(0.0, abs=1e-9)


def test_compare_refuses_shapes_that_differ():
    with pytest.raises(ValueError, match="differ in shape"):
        compare(np.zeros((3, 2)), np.zeros((3, 4)))


def test_the_gate_reports_each_failure_on_parity_numbers():
    r = compare(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.4, 0.6], [0.2, 0.8]]),
                np.array([0, 1]))
    assert Gate(0.99, 0.01, mode="point").failures(r) == [
        "top-1 agreement 50.00% < 99.00%", "accuracy -50.00 pt, more than 1.00 pt down"]
    assert Gate(0.4, 0.6, mode="point").failures(r) == []
    # On its bounds (the default gate), 2 images prove the agreement is below 99% but
    # cannot tell a 1-point drop, nor prove 40%.
    assert r["parity_counts"] == {"n": 2, "agree": 1, "both_right": 1, "lost": 1, "gained": 0}
    v = Gate(0.99, 0.01).verdict(r)
    assert v.answer == "fails" and v.reasons[0].startswith("top-1 agreement 50.00% of 2: at most")
    assert v.reasons[1].endswith("not proven <= 1.00 pt (undecided)")
    assert Gate(0.4, 0.6).verdict(r).answer == "undecided"


def _checked(n: int, agree: int) -> BenchRow:
    return BenchRow(format="tflite-int8", runtime="litert", status="ok", artifact="m.tflite",
                    top1_agreement=agree / n, parity_counts={"n": n, "agree": agree})


def test_exports_check_ends_undecided_with_exit_4_when_the_images_cannot_tell():
    """Not one disagreement in 200 images proves only 98.5% at 95%: undecided (4), not a
    pass; 299 prove 99%; 190 of 200 prove it is below: fails (1)."""
    gate = Gate(0.99, None)
    unsure = ExportResult([], [_checked(200, 200)]).failure(gate)
    assert isinstance(unsure, GateUndecided) and unsure.exit_code == 4
    assert "undecided" in str(unsure) and "not proven >= 99.00%" in str(unsure)
    assert ExportResult([], [_checked(299, 299)]).failure(gate) is None
    failed = ExportResult([], [_checked(200, 190)]).failure(gate)
    assert isinstance(failed, GateFailed) and failed.exit_code == 1
    assert ExportResult([], [_checked(200, 200)]).failure(
        Gate(0.99, None, mode="point")) is None  # --gate point: today's pass


@pytest.mark.slow
def test_parity_of_a_file_with_itself_passes_on_enough_images_and_is_undecided_on_few(
        tiny_exports):
    """An A/A check: the same file twice agrees on every image. The digits test split's
    360 images prove >= 99% at 95% (exit 0, the bounds in the JSON); 200 cannot (exit 4)."""
    f = tiny_exports["tflite-fp32"]
    whole = run_cli("parity", f, f, "--dataset", "digits", "--json")
    assert whole.returncode == 0, whole.stderr
    result = json.loads(whole.stdout)
    v = result["gate"]["verdict"]
    assert result["top1_agreement"] == 1.0 and result["n"] == 360
    assert v["answer"] == "passes" and 0.99 <= v["agreement_low"] < 1.0 == v["agreement_high"]
    few = run_cli("parity", f, f, "--dataset", "digits", "--limit", "200")
    assert few.returncode == 4, few.stderr + few.stdout
    assert "UNDECIDED" in few.stdout and "undecided" in few.stderr
    assert "Traceback" not in few.stderr


def test_chance_level_is_flagged():
    assert "chance level" in chance_warning(0.11, 10, "the model")
    assert chance_warning(0.9, 10, "the model") is None and chance_warning(None, 10, "m") is None


@pytest.mark.slow
@pytest.mark.parametrize("fmt,min_agree,max_diff", [("keras", 1.0, 1e-6), ("tflite-fp32", 1.0, 1e-4),
                                                    ("onnx-fp32", 1.0, 1e-4),
                                                    ("tflite-int8", 0.95, 0.2)])
def test_every_spine_export_agrees_with_keras(tiny_exports, tiny_dataset, tiny_reference,
                                              fmt, min_agree, max_diff):
    row, probs = bench_artifact(tiny_exports[fmt], CHECK,
                                EvalData(tiny_dataset.x_test, tiny_dataset.y_test, tiny_reference))
    assert row.status == "ok", row.error
    assert row.top1_agreement >= min_agree
    assert row.max_abs_diff <= max_diff
    assert abs(row.accuracy_delta) <= 0.03
    assert probs.shape == tiny_reference.shape


@pytest.mark.slow
def test_unscaled_pixels_fail_the_gate(tiny_exports, tiny_dataset, tiny_reference, tmp_path):
    """Feeding raw 0-255 pixels to the int8 model (a classic export bug) is caught."""
    good = tiny_exports["tflite-int8"]
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes())
    m = find_manifest(good)
    m.preprocessing = dataclasses.replace(m.preprocessing, scale=1.0)
    bad.with_name(bad.name + ".json").write_text(m.to_json())
    row, _ = bench_artifact(bad, CHECK,
                            EvalData(tiny_dataset.x_test, tiny_dataset.y_test, tiny_reference))
    assert row.status == "ok"
    assert Gate(0.99, None, mode="point").failures(row) == [
        f"top-1 agreement {100 * row.top1_agreement:.2f}% < 99.00%"]
    assert Gate(0.99, None).verdict(row).answer == "fails"  # proven, on its bound too
    assert row.top1_agreement < 0.5
