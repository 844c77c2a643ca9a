"""docs/BENCHMARKS.md is rendered from its kept data (docs/benchmarks/*.json)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

DATA = ROOT / "docs" / "benchmarks"


def test_benchmarks_page_is_in_sync_with_its_data():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_docs.py"), "render",
                        "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


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
