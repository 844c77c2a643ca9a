"""docs/BENCHMARKS.md is rendered from its kept data (docs/benchmarks/*.json)."""

from __future__ import annotations

import json

from tests.helpers import ROOT, assert_doc_in_sync

DATA = ROOT / "docs" / "benchmarks"


def test_benchmarks_page_is_in_sync_with_its_data():
    assert_doc_in_sync("benchmarks/bench_docs.py")


def test_every_table_names_its_command_machine_and_date():
    docs = [json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))]
    assert docs, "no benchmark data kept"
    for doc in docs:
        assert doc["command"].startswith("python scripts/") and doc["created"]
        assert doc.get("machine") or doc.get("env")
    models = [d for d in docs if "rows" in d and "name" in d]
    for doc in models:
        for row in doc["rows"]:
            if row["status"] == "ok" and row["runtime"] == "litert" and row["variant"] == "default":
                assert "delegate_nodes" in row["details"], row
