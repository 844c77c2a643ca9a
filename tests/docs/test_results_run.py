"""scripts/results/results_run.py never overwrites a run: a row id that has records is
refused (exit 2, one line, nothing touched) unless --archive moves them aside first, into
docs/training/recipes/ROW_ID/<n>-<date>/ with the reason."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "results" / "results_run.py"


def _row(folder):
    folder.mkdir(parents=True)
    (folder / "train.json").write_text('{"command": "edgeproof train --epochs 1"}')
    (folder / "row.json").write_text('{"system": "x"}')


def test_an_existing_row_is_refused(tmp_path):
    _row(tmp_path / "cifar-x")
    before = (tmp_path / "cifar-x" / "train.json").read_text()
    r = subprocess.run([sys.executable, str(SCRIPT), "cifar-x", "--system", "x", "--section",
                        "CIFAR-10", "--dataset", "CIFAR-10", "--report", "70", "--records",
                        str(tmp_path), "--", "--dataset", "digits", "--epochs", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "has records" in r.stderr and "--archive" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "cifar-x" / "train.json").read_text() == before  # untouched


def test_a_missing_run_to_file_moves_nothing(tmp_path):
    _row(tmp_path / "cifar-x")
    r = subprocess.run([sys.executable, str(SCRIPT), "cifar-x", "--system", "x", "--section",
                        "CIFAR-10", "--dataset", "CIFAR-10", "--report", "70", "--records",
                        str(tmp_path), "--archive", "retry", "--from-run",
                        str(tmp_path / "no-such-run"), "--", "--dataset", "digits"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no model.keras" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "cifar-x" / "train.json").exists()  # the row was not archived


def test_archive_moves_the_records_aside_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import results_run

    _row(tmp_path / "results" / "cifar-x")
    first = results_run.archive(tmp_path / "results" / "cifar-x", "lr too high",
                                recipes=tmp_path / "recipes")
    _row(tmp_path / "results" / "cifar-x")
    second = results_run.archive(tmp_path / "results" / "cifar-x", "seed 1",
                                 recipes=tmp_path / "recipes")
    assert not (tmp_path / "results" / "cifar-x").exists()
    assert first.name.startswith("1-") and second.name.startswith("2-")
    assert json.loads((first / "archive.json").read_text())["reason"] == "lr too high"
    assert (second / "train.json").exists()
