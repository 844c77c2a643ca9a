"""The plots of a results table: the Pareto fronts, labels of clustered points moved
apart, no throughput plot with one batch size, no per-class heatmap when no class changed
(and the page says so instead), stale plots of an earlier report removed. Fixed rows."""

from __future__ import annotations

import itertools

import pytest

from edgeproof.bench.plots import (class_changes, pareto_front, pareto_front_3d, spread_labels,
                                   write_plots)
from edgeproof.bench.row import BenchRow

CLASSES = ["a", "b", "c"]


def _row(fmt, p50, batch=1, deltas=(0.0, 0.0, 0.0), accuracy=0.9):
    return BenchRow(format=fmt, runtime="litert", status="ok", batch_size=batch,
                    artifact=f"{fmt}.tflite", size_bytes=50_000, accuracy=accuracy,
                    accuracy_delta=0.0, top1_agreement=1.0, latency_ms={"p50": p50, "p90": p50 * 1.1},
                    throughput_ips=batch * 1e3 / p50, per_class_accuracy_delta=list(deltas),
                    threads=1, thread_sweep={"threads": 1, "batch_size": 1,
                                             "p50_ms": {"1": p50, "default": p50 * 1.2}})


def _names(paths):
    return sorted(p.name for p in paths)


def test_pareto_front():
    pts = [(1.0, 0.80), (2.0, 0.90), (3.0, 0.85), (0.5, 0.70), (2.5, 0.95)]
    assert pareto_front(pts) == [3, 0, 1, 4]
    assert pareto_front([]) == []


def test_pareto_front_in_three_dimensions():
    pts = [(1.0, 0.8, 5), (2.0, 0.9, 5), (3.0, 0.85, 1), (3.0, 0.8, 6), (1.0, 0.8, 5)]
    assert pareto_front_3d(pts) == [0, 1, 2, 4]  # equal points do not beat each other
    assert pareto_front_3d([]) == []


def test_no_class_delta_plot_when_no_class_changed_and_the_page_says_so(tmp_path):
    from edgeproof.app.report_page import render_page

    rows = [_row("tflite-fp32", 0.03), _row("tflite-int8", 0.02)]
    assert class_changes(rows) is False
    (tmp_path / "class_delta.png").write_bytes(b"from an earlier report")
    made = write_plots(rows, tmp_path, CLASSES)
    assert "class_delta.png" not in _names(made)
    assert not (tmp_path / "class_delta.png").exists()  # the earlier one does not linger
    report = {"dataset": {"name": "d", "class_names": CLASSES}, "model": {"name": "m"},
              "results": [r.to_dict() for r in rows], "env": {}}
    assert "No class changed" in render_page(report, tmp_path)


def test_a_class_that_changed_gets_its_heatmap_and_no_note(tmp_path):
    from edgeproof.app.report_page import render_page

    rows = [_row("tflite-fp32", 0.03), _row("tflite-int8", 0.02, deltas=(0.0, -0.05, 0.0))]
    assert class_changes(rows) is True
    made = write_plots(rows, tmp_path, CLASSES)
    assert "class_delta.png" in _names(made)
    assert (tmp_path / "class_delta.png").read_bytes()[:4] == b"\x89PNG"
    report = {"dataset": {"name": "d", "class_names": CLASSES}, "model": {"name": "m"},
              "results": [r.to_dict() for r in rows], "env": {}}
    assert "No class changed" not in render_page(report, tmp_path)


def test_class_changes_without_per_class_numbers_is_unknown():
    row = _row("tflite-fp32", 0.03).replace(per_class_accuracy_delta=None)
    assert class_changes([row]) is None


def test_throughput_is_plotted_only_over_more_than_one_batch_size(tmp_path):
    one = write_plots([_row("tflite-fp32", 0.03), _row("onnx-fp32", 0.04)], tmp_path / "one",
                      CLASSES)
    assert _names(one) == ["latency.png", "pareto.png", "threads.png"]
    two = write_plots([_row("tflite-fp32", 0.03), _row("tflite-fp32", 0.1, batch=8)],
                      tmp_path / "two", CLASSES)
    assert "throughput.png" in _names(two)
    for p in two:
        assert p.read_bytes()[:4] == b"\x89PNG"


def _overlap(a, b, height, width):
    (xa, ya), (xb, yb) = a, b
    return abs(ya - yb) < height and xa < xb + width and xb < xa + width


@pytest.mark.parametrize("points", [
    [(100.0, 200.0)] * 5,  # five exports at the same spot
    [(100.0, 200.0), (104.0, 203.0), (98.0, 196.0), (110.0, 200.0), (400.0, 200.0)],
    [(10.0 * i, 50.0 + (i % 2)) for i in range(8)],  # a row of near neighbours
])
def test_spread_labels_keeps_the_labels_of_clustered_points_apart(points):
    height, width = 14.0, 120.0
    offsets = spread_labels(points, height=height, width_px=[width] * len(points))
    assert len(offsets) == len(points) and offsets[0] == 0.0  # the first stays at its point
    placed = [(x, y + dy) for (x, y), dy in zip(points, offsets)]
    for a, b in itertools.combinations(placed, 2):
        assert not _overlap(a, b, height, width), (a, b, offsets)


def test_spread_labels_leaves_points_far_apart_alone():
    assert spread_labels([(10, 10), (300, 10), (10, 200)]) == [0.0, 0.0, 0.0]
