"""Parity numbers are right, and they catch a broken export."""

import dataclasses

import numpy as np
import pytest

from edgeproof.bench.core import bench_artifact
from edgeproof.bench.parity import compare, gate
from edgeproof.manifest import find_manifest


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


def test_gate_reports_each_failure():
    r = {"top1_agreement": 0.9, "accuracy_delta": -0.05}
    assert gate(r, 0.99, 0.01) == ["top-1 agreement 0.9000 < 0.99", "accuracy drop 0.0500 > 0.01"]
    assert gate(r, 0.8, 0.1) == []


@pytest.mark.parametrize("fmt,min_agree,max_diff", [("keras", 1.0, 1e-6), ("tflite-fp32", 1.0, 1e-4),
                                                    ("onnx-fp32", 1.0, 1e-4),
                                                    ("tflite-int8", 0.95, 0.2)])
def test_every_spine_export_agrees_with_keras(tiny_exports, tiny_dataset, tiny_reference,
                                              fmt, min_agree, max_diff):
    row, probs = bench_artifact(tiny_exports[fmt], images=tiny_dataset.x_test,
                                labels=tiny_dataset.y_test, reference=tiny_reference,
                                latency=False)
    assert row["status"] == "ok", row["error"]
    assert row["top1_agreement"] >= min_agree
    assert row["max_abs_diff"] <= max_diff
    assert abs(row["accuracy_delta"]) <= 0.03


def test_unscaled_pixels_fail_the_gate(tiny_exports, tiny_dataset, tiny_reference, tmp_path):
    """Feeding raw 0-255 pixels to the int8 model (a classic export bug) is caught."""
    good = tiny_exports["tflite-int8"]
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes())
    m = find_manifest(good)
    m.preprocessing = dataclasses.replace(m.preprocessing, scale=1.0)
    bad.with_name(bad.name + ".json").write_text(m.to_json())
    row, _ = bench_artifact(bad, images=tiny_dataset.x_test, labels=tiny_dataset.y_test,
                            reference=tiny_reference, latency=False)
    assert row["status"] == "ok"
    assert gate(row, min_agreement=0.99)
    assert row["top1_agreement"] < 0.5
