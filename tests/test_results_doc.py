"""docs/results.json (the issue's contract) and the RESULTS.md table rendered from it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"system", "dataset", "seed_accuracy", "accuracy", "epochs", "seconds", "command"}


def _script():
    spec = importlib.util.spec_from_file_location("results_table",
                                                  ROOT / "scripts" / "results_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_results_json_rows_are_complete_and_reproducible():
    from edgeproof.toolkit.models import list_models

    rows = json.loads((ROOT / "docs" / "results.json").read_text())
    assert rows
    names = set(list_models())
    for r in rows:
        assert KEYS <= set(r), r
        assert 0 < r["accuracy"] <= 100 and 0 < r["seed_accuracy"] <= 100
        assert isinstance(r["epochs"], int) and r["epochs"] >= 1 and r["seconds"] > 0
        assert r["command"].startswith("edgeproof train ")
        # the command names a registered model and the shared dataset it ran on
        model = r["command"].split("--model ")[1].split()[0]
        assert model in names, model
        assert "--dataset ../shared/datasets/" in r["command"]


def test_results_markdown_is_rendered_from_the_json():
    mod = _script()
    rows = json.loads(mod.JSON.read_text())
    text = mod.MD.read_text()
    block = text.split(mod.BEGIN, 1)[1].split(mod.END, 1)[0]
    assert block.strip() == mod.render(rows).strip(), \
        "docs/RESULTS.md is stale: run python scripts/results_table.py"


def test_render_bolds_rows_that_beat_the_report():
    mod = _script()
    row = {"system": "m", "dataset": "MNIST", "section": "MNIST", "seed_accuracy": 90.0,
           "accuracy": 91.0, "epochs": 1, "seconds": 1.0, "command": "edgeproof train"}
    worse = dict(row, system="w", accuracy=89.0)
    text = mod.render([row, worse])
    assert "| m | 90.00% | **91.00%** |" in text and "| w | 90.00% | 89.00% |" in text
    assert "1 of 2 rows" in text
