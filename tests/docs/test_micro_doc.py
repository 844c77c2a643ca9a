"""docs/MICRO.md's lab-model table matches its kept data (docs/micro/lab_models.json), and
each row's verdict follows from its figures (256 KB of arena, 1 MB of flash)."""

from __future__ import annotations

import json

from tests.helpers import ROOT, assert_doc_in_sync


def test_micro_doc_is_in_sync_with_its_data():
    assert_doc_in_sync("micro/micro_table.py")


def test_each_verdict_follows_from_the_measured_figures():
    models = json.loads((ROOT / "docs" / "micro" / "lab_models.json").read_text())["models"]
    assert {"small_cnn", "lenet5", "lab_model6", "flowers_cnn"} <= set(models)
    for name, m in models.items():
        assert m["fits_ram"] == (m["arena_bytes"] <= 256 * 1024), name
        assert m["fits_flash"] == (m["flash_bytes"] <= 1024 * 1024), name
        assert m["arena_bytes"] >= m["arena_head_bytes"], name  # the tensors fit in it
