"""A user's own model, as it is: a CNN whose first layer is Rescaling(1/255), saved with
plain Keras; and .tflite / .onnx files converted without edgeproof (no manifest), through
`export`, `bench` and `predict`. Every test trains or converts: slow. (Detecting the
preprocessing from a model's layers: tests/core/test_keras_loader.py.)"""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rescaling_model(tiny_dataset, tmp_path_factory):
    """small_cnn-like, Rescaling(1/255) first (Keras' tutorials build models so), trained on
    raw digits pixels; saved with model.save, so no manifest exists."""
    from edgeproof.tfcompat import keras, set_seed

    k = keras()
    set_seed(0)
    model = k.Sequential([k.Input(tiny_dataset.input_shape), k.layers.Rescaling(1 / 255),
                          k.layers.Conv2D(16, 3, activation="relu"), k.layers.MaxPooling2D(),
                          k.layers.Flatten(), k.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(tiny_dataset.x_train.astype("float32"), tiny_dataset.y_train, epochs=4,
              batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("foreign") / "mine.keras"
    model.save(path)
    return path, model


@pytest.fixture(scope="module")
def foreign_files(rescaling_model, tiny_model, tiny_dataset, tmp_path_factory):
    """TFLite and ONNX conversions made with the libraries directly, no edgeproof: of the
    Rescaling-first model, and of small_cnn (which expects pixels already scaled)."""
    import tf2onnx

    from edgeproof.tfcompat import tf

    t = tf()
    out = tmp_path_factory.mktemp("converted")
    files = {}
    conv = t.lite.TFLiteConverter.from_keras_model(rescaling_model[1])
    conv.optimizations = [t.lite.Optimize.DEFAULT]
    x = tiny_dataset.x_train[:64].astype("float32")  # raw pixels, as the model takes them
    conv.representative_dataset = lambda: ([x[i:i + 1]] for i in range(len(x)))
    conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = t.int8
    files["mine-int8.tflite"] = out / "mine-int8.tflite"
    files["mine-int8.tflite"].write_bytes(conv.convert())
    for name, model in (("mine", rescaling_model[1]), ("plain", tiny_model)):
        files[f"{name}.tflite"] = out / f"{name}.tflite"
        files[f"{name}.tflite"].write_bytes(t.lite.TFLiteConverter.from_keras_model(model).convert())
        spec = (t.TensorSpec([None, *model.inputs[0].shape[1:]], t.float32, name="input"),)
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
        files[f"{name}.onnx"] = out / f"{name}.onnx"
        files[f"{name}.onnx"].write_bytes(proto.SerializeToString())
    return files


def test_export_reads_the_models_own_rescaling(rescaling_model, tmp_path):
    path, _ = rescaling_model
    r = run_cli("export", path, "--format", "keras,tflite-int8,tflite-dynamic,onnx-int8",
                "--calib", "digits", "--calib-size", "100", "--out", tmp_path, "--quiet",
                "--json", tmp_path / "check.json")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "preprocessing: detected: its first layer" in r.stdout
    assert "chance level" not in r.stderr
    rows = {row["format"]: row for row in json.loads((tmp_path / "check.json").read_text())}
    # The Keras row is the model's real accuracy (raw pixels in), not chance (10%).
    assert rows["keras"]["accuracy"] > 0.6, rows["keras"]
    assert all(row["top1_agreement"] > 0.9 for row in rows.values()), rows
    manifest = json.loads((tmp_path / "mine-tflite-int8.tflite.json").read_text())
    assert manifest["preprocessing"]["scale"] == 1.0
    assert manifest["source"]["preprocessing"].startswith("detected:")


def test_wrong_preprocessing_gets_a_loud_warning(rescaling_model, tmp_path):
    path, _ = rescaling_model
    r = run_cli("export", path, "--format", "keras", "--calib", "digits", "--out", tmp_path,
                "--preprocess", "scale=1/255", "--quiet")
    assert "WARNING" in r.stderr and "chance level" in r.stderr and "preprocess" in r.stderr


def test_bench_takes_files_without_a_manifest(foreign_files, tmp_path):
    files = [foreign_files[n] for n in ("mine.tflite", "mine.onnx", "plain.tflite")]
    r = run_cli("bench", *files, "--quiet", "--json", tmp_path / "lat.json")
    assert r.returncode == 0, r.stderr + r.stdout
    rows = json.loads((tmp_path / "lat.json").read_text())["results"]
    assert [row["format"] for row in rows] == ["tflite (no manifest)", "onnx (no manifest)",
                                               "tflite (no manifest)"]
    assert all(row["status"] == "ok" and row["latency_ms"]["p50"] > 0 for row in rows)


def test_bench_accuracy_uses_detection_or_asks_for_preprocess(foreign_files, tmp_path):
    # ONNX keeps Rescaling as a Mul on the input; an int8 input's quantization range is
    # 0-255: both say "raw pixels". The float TFLite converter folded the Rescaling into
    # the first convolution, so that file cannot tell and needs --preprocess.
    shown = [foreign_files["mine.onnx"], foreign_files["mine-int8.tflite"]]
    r = run_cli("bench", *shown, "--dataset", "digits", "--quiet", "--json", tmp_path / "a.json")
    assert r.returncode == 0, r.stderr + r.stdout
    rows = json.loads((tmp_path / "a.json").read_text())["results"]
    assert all(row["accuracy"] > 0.6 for row in rows), rows
    # Files that cannot show their scaling: refused with a pointer to --preprocess, then
    # measured once it is given.
    for name, scaling, floor in (("mine.tflite", "scale=1", 0.6), ("plain.onnx", "scale=1/255", 0.5)):
        r = run_cli("bench", foreign_files[name], "--dataset", "digits", "--quiet")
        assert r.returncode == 2 and "--preprocess" in r.stderr and "Traceback" not in r.stderr
        report = tmp_path / f"{name}.json"
        r = run_cli("bench", foreign_files[name], "--dataset", "digits", "--preprocess", scaling,
                    "--quiet", "--json", report)
        assert r.returncode == 0, r.stderr
        assert json.loads(report.read_text())["results"][0]["accuracy"] > floor


def test_predict_a_file_without_a_manifest(foreign_files, tiny_dataset, tmp_path):
    from PIL import Image

    img = tmp_path / "digit.png"
    Image.fromarray(tiny_dataset.x_test[0][..., 0]).save(img)
    r = run_cli("predict", foreign_files["mine-int8.tflite"], img, "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout.splitlines()[0])
    assert rec["predictions"][0]["index"] == int(tiny_dataset.y_test[0])
    r = run_cli("predict", foreign_files["plain.tflite"], img)
    assert r.returncode == 2 and "--preprocess" in r.stderr
