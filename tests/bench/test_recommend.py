"""Which export to ship, on fixed rows (dicts as report.json holds them, or BenchRows): the
fastest that passes the gate wins, equal speed goes to the smaller file, the reference
format is never recommended, none passing names the closest and the rule it breaks."""

from __future__ import annotations

from edgeproof.bench.gate import Gate
from edgeproof.bench.recommend import closest, recommend, recommendation_note
from edgeproof.bench.row import BenchRow


def _row(fmt, p50, size, agree=1.0, delta=0.0, runtime="litert", batch=1, status="ok"):
    return {"format": fmt, "runtime": runtime, "status": status, "batch_size": batch,
            "latency_ms": {"p50": p50}, "size_bytes": size, "top1_agreement": agree,
            "accuracy_delta": delta, "accuracy": 0.9 + delta, "artifact": f"{fmt}-{runtime}"}


def test_fastest_passing_export_wins():
    rows = [_row("keras", 0.1, 9, runtime="keras"),  # the reference: never recommended
            _row("tflite-fp32", 1.0, 500), _row("tflite-int8", 0.4, 100, agree=0.995),
            _row("onnx-int8", 0.3, 120, agree=0.97),  # fastest, but fails agreement
            _row("tflite-dynamic", 0.6, 130, delta=-0.02)]  # fails the accuracy drop
    rec = recommend(rows, Gate())
    assert rec.format == "tflite-int8" and rec.artifact == "tflite-int8-litert"
    assert "2 of 4 exports" in rec.why and "tflite-fp32" in rec.why  # the runner-up


def test_equal_speed_goes_to_the_smaller_file():
    rows = [_row("onnx-fp32", 0.5, 300, runtime="onnxruntime"), _row("tflite-fp32", 0.5, 200)]
    assert recommend(rows, Gate()).format == "tflite-fp32"
    rows = [_row("onnx-fp32", 0.4, 300, runtime="onnxruntime"), _row("tflite-fp32", 0.5, 200)]
    assert recommend(rows, Gate()).format == "onnx-fp32"  # faster beats smaller


def test_only_the_smallest_batch_and_ok_rows_count():
    rows = [_row("tflite-int8", 5.0, 100, batch=32), _row("tflite-int8", 0.5, 100),
            _row("onnx-int8", 0.1, 90, runtime="onnxruntime", status="failed")]
    assert recommend(rows, Gate()).latency_ms["p50"] == 0.5


def test_none_passing_names_the_closest_with_its_numbers():
    rows = [_row("tflite-int8", 0.4, 100, agree=0.95), _row("onnx-int8", 0.3, 90, agree=0.98,
                                                            runtime="onnxruntime")]
    gate = Gate(min_agreement=0.99, max_accuracy_drop=0.005)
    assert recommend(rows, gate) is None
    line = closest(rows, gate)
    assert line.startswith("closest: onnx-int8/onnxruntime") and "98.00%" in line
    assert "top-1 agreement 98.00% < 99.00%" in line


def test_rows_and_dicts_are_judged_alike():
    dicts = [_row("tflite-int8", 0.4, 100, agree=0.995), _row("onnx-int8", 0.3, 90, agree=0.97)]
    rows = [BenchRow.from_dict(d) for d in dicts]
    assert recommend(rows, Gate()) == recommend(dicts, Gate())
    assert recommend(rows, Gate()).format == "tflite-int8"
    assert closest(rows, Gate(1.0, None)) == closest(dicts, Gate(1.0, None))


def test_the_note_names_the_gate_and_the_closest():
    rows = [_row("tflite-int8", 0.4, 100, agree=0.95)]
    note = recommendation_note(rows, Gate(0.99, None))
    assert note.startswith("No export passes the gate (top-1 agreement >= 99%)")
    assert "closest: tflite-int8/litert" in note and "accuracy drop" not in note
