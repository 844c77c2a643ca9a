"""docs/EXPORT.md's PyTorch table and BENCHMARKS.md's OpenVINO section are rendered from
their kept record (docs/evidence/pytorch/summary.json, with its command, date and
machine), and that record holds what the issues ask the table to show: every runtime a
PyTorch user ships on, measured against PyTorch itself on the 10,000 test images."""

from __future__ import annotations

import json

from tests.helpers import ROOT, assert_doc_in_sync

RECORD = ROOT / "docs" / "evidence" / "pytorch" / "summary.json"


def test_both_pages_are_in_sync_with_the_record():
    assert_doc_in_sync("export/pytorch_table.py")


def test_the_record_names_its_run_and_covers_every_runtime():
    doc = json.loads(RECORD.read_text())
    assert doc["command"].startswith("python scripts/export/pytorch_table.py run")
    assert doc["created"] and doc["env"]["cpu"] and doc["images"]["split"]["test"] == 10_000
    rows = {r["format"]: r for r in doc["rows"]}
    runtimes = {r["runtime"] for r in doc["rows"]}
    assert {"pytorch", "onnxruntime", "litert", "openvino", "executorch"} <= runtimes
    for fmt in ("executorch-fp32", "executorch-int8"):  # every .pte shows its share
        assert 0 < rows[fmt]["delegated"] <= 1, rows[fmt]
    for fmt in ("openvino-fp32", "openvino-int8"):  # the precision OpenVINO really used
        assert rows[fmt]["precision"], rows[fmt]
    assert all(r["status"] == "ok" for r in doc["rows"]), doc["rows"]
