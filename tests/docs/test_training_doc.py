"""docs/TRAINING.md is rendered from its kept data (docs/training/), and that data holds
what the page claims: bf16 measured against float32 on the same command."""

from __future__ import annotations

import json

from tests.helpers import ROOT, assert_doc_in_sync

DATA = ROOT / "docs" / "training"


def test_training_page_is_in_sync_with_its_data():
    assert_doc_in_sync("training/training_docs.py")


def test_each_precision_twin_differs_from_its_row_only_in_precision():
    twins = sorted((DATA / "precision").iterdir())
    assert twins, "no float32 twin of a results row kept"
    for twin in twins:
        base = ROOT / "docs" / "results" / twin.name.rsplit("-", 1)[0]
        a = json.loads((base / "train.json").read_text())
        b = json.loads((twin / "train.json").read_text())
        assert a["precision"]["used"] != b["precision"]["used"]
        assert (a["config"], a["seed"], a["epochs_run"]) == (b["config"], b["seed"], b["epochs_run"])


def test_kept_measurements_name_their_command_machine_and_date():
    for name in ("throughput.json", "feature_cache.json"):
        doc = json.loads((DATA / name).read_text())
        assert doc["command"].startswith("python scripts/") and doc["machine"] and doc["created"]
