"""``edgeproof info FILE [--json PATH]``: the console view (rich, within 100 columns) and the
JSON say the same; broken files are one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json

import pytest

from edgeproof.cli.main import main
from tests.app.test_file_info import pytorch_style_onnx, uint8_tflite
from tests.helpers import ok, one_line_error, run_cli


def test_info_on_a_pytorch_onnx_shows_nchw_and_the_dynamic_batch(tmp_path, capsys):
    path = pytorch_style_onnx(tmp_path / "resnetish.onnx")
    out_json = tmp_path / "info.json"
    assert main(["info", str(path), "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "batch?x3x16x16" in text and "NCHW" in text and "float32" in text
    assert "4 (no names" in text and "pytorch 2.13" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    data = json.loads(out_json.read_text())
    (inp,) = data["inputs"]
    assert inp["shape"] == ["batch", 3, 16, 16] and inp["dynamic_axes"] == [0]
    assert inp["layout"] == "NCHW" and data["num_classes"] == 4
    assert data["manifest"]["found"] is False and data["preprocessing"]["source"] == "unknown"


def test_the_registries_commands_still_list(capsys):
    assert main(["runtimes"]) == 0
    assert "onnxruntime" in capsys.readouterr().out


@pytest.mark.parametrize("name,content,needle", [
    ("empty.tflite", b"", "empty"),
    ("random.onnx", bytes(range(7, 250)) * 20, "not a readable ONNX file"),
    ("notes.txt", b"just text", "not a model file"),
])
def test_broken_files_are_one_line_in_process(tmp_path, capsys, name, content, needle):
    p = tmp_path / name
    p.write_bytes(content)
    assert main(["info", str(p)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgeproof: error: ") and needle in err[0]


def test_broken_files_are_one_line_from_the_shell(tmp_path):
    path = pytorch_style_onnx(tmp_path / "net.onnx")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(path.read_bytes()[:150])
    one_line_error(run_cli("info", cut), "cut.onnx", "not a readable ONNX file")
    tfl = tmp_path / "garbage.tflite"  # read in the sandbox process: its error comes back
    tfl.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 500)
    one_line_error(run_cli("info", tfl), "garbage.tflite")
    one_line_error(run_cli("info", tmp_path / "missing.onnx"), "no such file")


def test_a_json_path_that_cannot_be_written_is_one_line(tmp_path):
    path = pytorch_style_onnx(tmp_path / "net.onnx")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(run_cli("info", path, "--json", blocker / "sub" / "info.json"),
                   "cannot write --json")


@pytest.mark.slow
def test_info_on_a_uint8_tflite_shows_scale_zero_point_and_classes(tmp_path):
    path = uint8_tflite(tmp_path / "q.tflite", size=24, classes=5)
    out_json = tmp_path / "q.json"
    text = ok(run_cli("info", path, "--json", out_json)).stdout
    assert "uint8" in text and "N?x24x24x3" in text and "NHWC" in text
    assert "scale" in text and "zero-point" in text and "5 (no names" in text
    assert "full-integer" in text and "XNNPACK" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    data = json.loads(out_json.read_text())
    q = data["inputs"][0]["quantization"]
    assert data["inputs"][0]["dtype"] == "uint8" and q["scale"] > 0
    assert f"zero-point {q['zero_point']}" in text and data["num_classes"] == 5
    assert data["integer"]["kind"] == "full-integer" and data["delegation"]["partitions"] >= 1
