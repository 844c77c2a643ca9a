"""`edgeproof memory` and `run --target mcu` as a user runs them: a measured arena where TFLM
runs the file, a computed one (labelled so) where it cannot, the JSON, the firmware line,
the sidecar manifest; budgets that are not sizes are one-line errors."""

from __future__ import annotations

import json

import pytest

from tests.bench.micro_models import write_tiny
from tests.helpers import ok, one_line_error, run_cli


def test_memory_measures_what_tflm_runs_and_computes_the_rest(tmp_path):
    pytest.importorskip("tflite_micro", reason="tflite-micro (the [micro] extra) not installed")
    good, gelu = write_tiny(tmp_path, name="tiny"), write_tiny(tmp_path, "GELU")
    proc = ok(run_cli("memory", good, gelu, "--json", tmp_path / "memory.json",
                      "--write-manifest"))
    report = json.loads((tmp_path / "memory.json").read_text())
    first, second = report["artifacts"]
    assert first["arena_kind"] == "measured" and first["arena_bytes"] > 0
    assert first["flash_bytes"] == good.stat().st_size and first["macs"] == 160
    assert second["arena_kind"] == "computed" and second["ops"]["GELU"] is False
    assert "GELU" in second["tflm_error"]
    assert f"kTensorArenaSize = {first['arena_bytes']};" in proc.stdout
    assert "computed" in proc.stdout and "lower bound" in proc.stdout
    side = json.loads(good.with_name(good.name + ".json").read_text())
    assert side["micro"]["arena_bytes"] == first["arena_bytes"]
    assert "micro" not in json.loads(gelu.with_name(gelu.name + ".json").read_text())
    assert "only a measured arena" in second["manifest_error"]


def test_memory_computed_only_and_a_file_it_cannot_read(tmp_path):
    good = write_tiny(tmp_path, name="tiny")
    bad = tmp_path / "notes.tflite"
    bad.write_text("not a model")
    proc = run_cli("memory", good, bad, "--computed-only", "--json", tmp_path / "m.json")
    assert proc.returncode == 1, proc.stderr
    first, second = json.loads((tmp_path / "m.json").read_text())["artifacts"]
    assert first["arena_kind"] == "computed" and first["arena_bytes"] == 32
    assert "Not a TFLite flatbuffer" in second["error"]


@pytest.mark.parametrize("flag", ["--ram-budget", "--flash-budget"])
def test_a_budget_that_is_not_a_size_is_one_line(flag):
    proc = run_cli("run", flag, "lots")
    one_line_error(proc, flag, "256KB", "KiB")


@pytest.mark.slow
def test_run_for_a_microcontroller_end_to_end(tmp_path):
    pytest.importorskip("tflite_micro", reason="tflite-micro (the [micro] extra) not installed")
    out = tmp_path / "run"
    # A 2-epoch model at 16 px: the agreement gate is the flow's, not int8 quality's.
    proc = ok(run_cli("run", "--image-size", "16", "--epochs", "2", "--target", "mcu",
                      "--ram-budget", "64KB", "--flash-budget", "1MB", "--min-agreement", "0.95",
                      "--max-accuracy-drop", "2", "--out", out, "--quiet"))
    report = json.loads((out / "report.json").read_text())
    assert [(r["format"], r["runtime"]) for r in report["results"]] == \
        [("keras", "keras"), ("tflite-int8", "tflm")]
    row = report["results"][1]
    assert row["micro"]["arena_kind"] == "measured" and row["micro"]["arena_bytes"] < 64 * 1024
    rec = report["recommendation"]
    assert rec["runtime"] == "tflm" and rec["target"] == "mcu" and "MACs" in rec["why"]
    side = json.loads((out / "models" / "small_cnn-tflite-int8.tflite.json").read_text())
    assert side["micro"]["arena_bytes"] == row["micro"]["arena_bytes"]
    assert "not microcontroller time" in proc.stdout.replace("\n", " ")
    assert "not microcontroller time" in (out / "report.md").read_text()
