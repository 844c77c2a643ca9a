"""docs/results.json and RESULTS.md come from the run records in docs/results/<row-id>/:
each row's accuracy is its metrics.json, its command parses with the real CLI parser and
its epochs match its history (issue: every lab-report row with its own evidence)."""

from __future__ import annotations

import importlib.util
import json
import shlex

import pytest

from tests.helpers import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("results_table",
                                                  ROOT / "scripts" / "results" / "results_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def table():
    mod = _script()
    return mod, json.loads(mod.JSON.read_text())


def test_every_row_has_its_own_run_record(table):
    mod, rows = table
    folders = {f.name for f in mod.RECORDS.iterdir() if (f / "row.json").exists()}
    assert rows and [r["id"] for r in rows] == sorted(folders)
    assert rows == mod.load(), "docs/results.json is stale: run python scripts/results_table.py"
    # Its own run: no two rows share trained weights (a port or praisynet row that reused
    # another row's run would carry the same hash).
    hashes = [json.loads((mod.RECORDS / r["id"] / "train.json").read_text())["weights_sha256"]
              for r in rows]
    assert len(set(hashes)) == len(rows)


def test_each_rows_numbers_come_from_its_records(table):
    from edgeproof.cli.main import build_parser
    from edgeproof.toolkit.models import list_models

    mod, rows = table
    parser = build_parser()
    for r in rows:
        folder = mod.RECORDS / r["id"]
        metrics = json.loads((folder / "metrics.json").read_text())
        train = json.loads((folder / "train.json").read_text())
        assert metrics["split"] == "test" and r["accuracy"] == round(100 * metrics["accuracy"], 2)
        assert {"command", "versions", "seed", "precision", "fit_seconds"} <= set(train), r["id"]
        argv = shlex.split(r["command"])
        assert argv[:2] == ["edgeproof", "train"], r["command"]
        args = parser.parse_args(argv[1:])  # the real CLI parser takes it as written
        assert args.model in list_models() and args.dataset.startswith("../shared/datasets/")
        assert r["epochs"] == train["epochs_run"] == mod.history_epochs(folder) <= args.epochs
        assert r["seconds"] == train["fit_seconds"] > 0


def test_results_markdown_is_rendered_from_the_records(table):
    mod, rows = table
    text = mod.MD.read_text()
    block = text.split(mod.BEGIN, 1)[1].split(mod.END, 1)[0]
    assert block.strip() == mod.render(rows).strip(), \
        "docs/RESULTS.md is stale: run python scripts/results_table.py"


def test_render_bolds_rows_that_match_or_beat_the_report():
    mod = _script()
    row = {"id": "a", "system": "m", "section": "MNIST", "seed_accuracy": 90.0,
           "accuracy": 91.0, "epochs": 1, "seconds": 1.0, "precision": "float32",
           "machine": "Xeon, 2 cores", "command": "edgeproof train"}
    close = dict(row, id="b", system="c", accuracy=89.6)
    worse = dict(row, id="c", system="w", accuracy=89.0)
    text = mod.render([row, close, worse])
    assert "| m | 90.00% | **91.00%** |" in text and "| c | 90.00% | **89.60%** |" in text
    assert "| w | 90.00% | 89.00% |" in text
    assert "2 of 3 rows" in text and "3 runs" in text and "Not yet: w (MNIST)" in text
