"""One gate for everything that depends on parity: a limit left None is not checked (by
``failures``, by ``recommend`` and by the report's gate section alike), the defaults are
the named constants and appear nowhere else as literals, each message names the rule that
failed, and the report's section judges an artifact once however many batch sizes ran.
(``run_bench``'s use of it: tests/app/test_bench_gate.py.)"""

from __future__ import annotations

import ast

import pytest

from edgeproof.bench.gate import (DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT, Gate,
                                  gate_section)
from edgeproof.bench.recommend import recommend, recommendation_note
from edgeproof.bench.row import BenchRow
from tests.helpers import ROOT

SOURCES = ("edgeproof", "toolkit", "export", "bench")


def _row(agree, delta, fmt="tflite-int8", batch=1, artifact=None, status="ok"):
    return BenchRow(format=fmt, runtime="litert", status=status, batch_size=batch,
                    top1_agreement=agree, accuracy_delta=delta,
                    accuracy=None if delta is None else 0.9 + delta, latency_ms={"p50": 0.5},
                    size_bytes=100, artifact=artifact or f"{fmt}.tflite")


def test_defaults_are_the_named_constants():
    assert (DEFAULT_MIN_AGREEMENT, DEFAULT_MAX_ACCURACY_DROP) == (0.99, 0.005)
    assert Gate() == Gate(DEFAULT_MIN_AGREEMENT, DEFAULT_MAX_ACCURACY_DROP)
    assert Gate.from_flags(None, None) == Gate()
    none = Gate.from_flags(None, None, default=False)
    assert none == Gate(None, None) and not none.checks_anything
    assert none.failures(_row(0.1, -0.5)) == [] and none.describe() == "no limits"


def test_no_literal_default_threshold_outside_the_gate_module():
    """The defaults are written once, in bench/gate.py; everything else names them."""
    found = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "bench" / "gate.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and type(node.value) is float \
                        and node.value in (DEFAULT_MIN_AGREEMENT, DEFAULT_MAX_ACCURACY_DROP):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    assert found == []


def test_only_min_agreement_given_leaves_accuracy_unchecked():
    gate = Gate.from_flags(0.99, None)
    assert gate == Gate(0.99, None) and gate.describe() == "top-1 agreement >= 99%"
    drops = _row(0.995, -0.05)  # agrees, but 5 points less accurate
    assert gate.failures(drops) == [] and gate.passes(drops)
    assert recommend([drops], gate).format == "tflite-int8"  # the recommendation agrees
    section = gate_section(gate, [drops], enforced=True)
    assert section["passed"] is True and section["failures"] == []
    assert section["max_accuracy_drop"] is None and section["min_agreement"] == 0.99
    # the default gate does check accuracy: then nothing passes, and both say so
    assert recommend([drops], Gate()) is None
    assert gate_section(Gate(), [drops], enforced=False)["passed"] is False
    assert "accuracy drop <= 0.5 pt" in recommendation_note([drops], Gate())


def test_only_max_accuracy_drop_given_leaves_agreement_unchecked():
    gate = Gate.from_flags(None, 0.01)
    assert gate.failures(_row(0.5, -0.005)) == []
    assert gate.failures(_row(0.5, -0.02)) == ["accuracy -2.00 pt, more than 1.00 pt down"]


@pytest.mark.parametrize("agree,delta,want", [
    (0.97, -0.001, ["top-1 agreement 97.00% < 99.00%"]),
    (0.995, -0.02, ["accuracy -2.00 pt, more than 0.50 pt down"]),
    (0.97, -0.02, ["top-1 agreement 97.00% < 99.00%", "accuracy -2.00 pt, more than 0.50 pt down"]),
    (0.99, -0.005, []),  # exactly at both limits: passes
    (0.995, 0.03, []),  # more accurate than the reference: no drop
])
def test_messages_name_the_rule_that_failed(agree, delta, want):
    gate = Gate(0.99, 0.005)
    assert gate.failures(_row(agree, delta)) == want
    assert gate.failures(_row(agree, delta).to_dict()) == want  # a report.json row alike
    assert gate.passes(_row(agree, delta)) is (want == [])


def test_without_parity_numbers_a_checking_gate_says_so():
    row = _row(None, None)
    assert Gate().failures(row) == ["no parity numbers (no reference)"]
    assert Gate(None, None).failures(row) == []


def test_the_section_judges_each_artifact_once_across_batch_sizes():
    bad = [_row(0.9, 0.0, "onnx-int8", batch=b, artifact="m-int8.onnx") for b in (1, 8, 32)]
    good = [_row(1.0, 0.0, "tflite-fp32", batch=b, artifact="m.tflite") for b in (1, 8, 32)]
    failed = _row(None, None, "tflite-int8", status="failed")  # no numbers: not judged
    section = gate_section(Gate(0.99, None), bad + good + [failed], enforced=True)
    assert section["failures"] == ["onnx-int8/litert: top-1 agreement 90.00% < 99.00%"]
    assert section["passed"] is False and section["enforced"] is True
    dicts = gate_section(Gate(0.99, None), [r.to_dict() for r in bad + good], enforced=False)
    assert dicts["failures"] == section["failures"] and dicts["enforced"] is False
