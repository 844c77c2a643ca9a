"""Bad model files, parameters and output folders get exactly one error line from the CLI
(no traceback), before any training starts. (Fuzzed artifacts: tests/bench; atomic
writes: tests/core and tests/export; kill and resume: test_resume.py.)"""

import pytest

from tests.helpers import one_line_error as _one_line_error
from tests.helpers import run_cli


# -- model files --------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".keras", ".h5", ".tflite", ".onnx"])
@pytest.mark.parametrize("content", [b"", b"garbage" * 100], ids=["empty", "garbage"])
def test_garbage_model_files_are_refused(tmp_path, suffix, content):
    bad = tmp_path / f"model{suffix}"
    bad.write_bytes(content)
    if suffix in (".keras", ".h5"):
        proc = run_cli("export", bad, "--format", "tflite-fp32", "--out", tmp_path / "o")
        _one_line_error(proc, "model")
    else:
        proc = run_cli("predict", bad, tmp_path)
        _one_line_error(proc, "manifest")


@pytest.mark.slow
def test_altered_artifact_is_refused_with_its_manifest(tiny_exports, tmp_path):
    src = tiny_exports["tflite-int8"]
    bad = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    (tmp_path / (src.name + ".json")).write_bytes(src.with_name(src.name + ".json").read_bytes())
    img = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (16, 16), 0).save(img)
    _one_line_error(run_cli("predict", bad, img), "sha256")


@pytest.mark.slow
def test_lambda_layer_is_refused_unless_unsafe(tmp_path):
    from edgeproof.tfcompat import keras

    k = keras()
    inp = k.Input((8, 8, 1))
    out = k.layers.Dense(2, activation="softmax")(k.layers.Flatten()(k.layers.Lambda(lambda x: x * 2.0)(inp)))
    path = tmp_path / "lambda.keras"
    k.Model(inp, out).save(path)
    _one_line_error(run_cli("export", path, "--format", "onnx-fp32", "--out", tmp_path / "a"),
                    "lambda", "--unsafe")
    proc = run_cli("export", path, "--format", "onnx-fp32", "--out", tmp_path / "b", "--unsafe")
    assert proc.returncode == 0, proc.stderr


# -- shapes, types and parameters ---------------------------------------------------------
@pytest.mark.parametrize("args,needles", [
    (("train", "--model", "inception_v3_frozen", "--weights", "none", "--image-size", "32",
      "--epochs", "1"), ("at least 75",)),
    (("run", "--calib-size", "5000", "--epochs", "1", "--image-size", "16"), ("calib-size",)),
    (("train", "--lr", "-1", "--epochs", "1"), ("learning_rate",)),
    (("train", "--model", "resnet50_frozen", "--init", "pytorch", "--epochs", "1"),
     ("--init pytorch", "transfer model")),
])
def test_bad_parameters(tmp_path, args, needles):
    _one_line_error(run_cli(*args, "--out", tmp_path / "o"), *needles)
    assert not list(tmp_path.rglob("history.csv"))  # refused before training started


# -- outputs ------------------------------------------------------------------------------
def test_unwritable_output_folder_fails_before_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _one_line_error(run_cli("run", "--out", blocker / "sub"), "cannot write", "--out")
    _one_line_error(run_cli("train", "--out", blocker / "sub"), "cannot write")
