"""The manifest round-trips (sidecar and embedded, and edgekit 0.1.0's files still load), and
the shared preprocessing does what the manifest says. Tests on the tiny exports are slow."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeproof.preprocess import dequantize, postprocess, prepare, quantize
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo, find_manifest, manifest_path
from edgeproof.errors import RuntimeFailure, ModelError


def _manifest(dtype="float32", quant=None, color="grayscale", size=(8, 8), layout="NHWC"):
    c = 1 if color == "grayscale" else 3
    return Manifest(format="x", class_names=["a", "b", "c"],
                    input=TensorInfo("in", [-1, *size, c], dtype, layout, quant),
                    output=TensorInfo("out", [-1, 3]),
                    preprocessing=Preprocessing(size=list(size), color=color))


def test_round_trip_dict_and_file(tmp_path):
    m = _manifest("int8", {"scale": 0.5, "zero_point": -3})
    assert Manifest.from_dict(json.loads(m.to_json())) == m
    p = tmp_path / "m.tflite.json"
    p.write_text(m.to_json())
    assert Manifest.load(p) == m
    assert m.versions["edgeproof"] and "numpy" in m.versions


@pytest.mark.slow
def test_sidecar_of_every_export_describes_it(tiny_exports, tiny_dataset):
    from edgeproof.manifest import sha256_file

    for fmt, path in tiny_exports.items():
        m = find_manifest(path)
        assert m.format == fmt
        assert m.class_names == tiny_dataset.class_names
        assert m.sha256 == sha256_file(path)
        assert m.size_bytes == path.stat().st_size
        assert m.preprocessing.size == [16, 16] and m.preprocessing.color == "grayscale"
        assert m.source["model_name"] == "small_cnn"
    int8 = find_manifest(tiny_exports["tflite-int8"])
    assert int8.input.dtype == "int8" and int8.input.quantization["scale"] > 0
    assert int8.calibration["n"] == 100 and int8.calibration["class_balanced"]


@pytest.mark.slow
def test_onnx_manifest_is_embedded(tiny_exports, tmp_path):
    onnx_path = tiny_exports["onnx-fp32"]
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(onnx_path.read_bytes())  # no sidecar beside it
    m = find_manifest(lone)
    assert m.format == "onnx-fp32" and m.class_names == find_manifest(onnx_path).class_names


def test_missing_or_malformed_manifest_is_a_clear_error(tmp_path):
    f = tmp_path / "m.tflite"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match="No manifest"):
        find_manifest(f)
    manifest_path(f).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        find_manifest(f)
    manifest_path(f).write_text('{"format": "x"}')
    with pytest.raises(ModelError, match="malformed"):
        find_manifest(f)


def test_prepare_float_scales_pixels():
    img = np.full((2, 8, 8, 1), 255, np.uint8)
    x = prepare(img, _manifest())
    assert x.dtype == np.float32 and x.shape == (2, 8, 8, 1) and np.allclose(x, 1.0)


def test_prepare_int8_quantizes_like_tflite():
    q = {"scale": 1 / 255, "zero_point": -128}
    img = np.array([0, 128, 255], np.uint8).reshape(1, 1, 3, 1).repeat(8, 1)[:, :, :3]
    m = _manifest("int8", q, size=(8, 3))
    x = prepare(img, m)
    assert x.dtype == np.int8
    assert x[0, 0, :, 0].tolist() == [-128, 0, 127]


def test_prepare_resizes_converts_channels_and_layout():
    rgb = np.zeros((1, 20, 10, 3), np.uint8)
    x = prepare(rgb, _manifest(size=(8, 8)))
    assert x.shape == (1, 8, 8, 1)
    x = prepare(np.zeros((1, 8, 8, 1), np.uint8), _manifest(color="rgb", layout="NCHW"))
    assert x.shape == (1, 3, 8, 8)


def test_prepare_rejects_float_pixels():
    with pytest.raises(RuntimeFailure, match="uint8"):
        prepare(np.zeros((1, 8, 8, 1), np.float32), _manifest())


def test_quantize_saturates_and_dequantize_inverts():
    x = np.array([-10.0, 0.0, 0.5, 10.0], np.float32)
    q = quantize(x, 0.01, 0, "int8")
    assert q.tolist() == [-128, 0, 50, 127]
    assert np.allclose(dequantize(q[1:3], 0.01, 0), [0.0, 0.5])
    m = _manifest()
    m.output = TensorInfo("out", [-1, 3], "int8", quantization={"scale": 1 / 256, "zero_point": -128})
    assert np.allclose(postprocess(np.array([[-128, 0, 127]], np.int8), m), [[0, 0.5, 255 / 256]])


# -- artifacts written by edgekit 0.1.0 (this project's former name) ----------------------
LEGACY = Path(__file__).parents[1] / "fixtures" / "edgekit-0.1.0"


@pytest.mark.parametrize("name", ["legacy-tflite-fp32.tflite", "legacy-onnx-fp32.onnx"])
def test_edgekit_0_1_0_artifacts_still_load_and_run(name, tmp_path):
    """Fixture files written by today's code before the rename (tests/fixtures/edgekit-0.1.0):
    the sidecar and the embedded manifest (key ``edgekit_manifest``) both load, and the
    file predicts what the Keras model did."""
    from edgeproof.bench.runtimes import open_runtime

    src = LEGACY / name
    side = Manifest.load(manifest_path(src))
    assert (side.producer, side.producer_version) == ("edgekit", "0.1.0")
    assert side.class_names == ["a", "b", "c"]
    lone = shutil.copy(src, tmp_path / name)  # no sidecar: the embedded manifest
    embedded = find_manifest(lone)
    assert embedded.producer == "edgekit" and embedded.preprocessing == side.preprocessing
    x = (np.arange(2 * 16).reshape(2, 4, 4, 1) % 256).astype(np.uint8)
    for path in (src, lone):
        with open_runtime(path) as rt:
            probs = rt.predict_images(x)
        np.testing.assert_allclose(probs, np.load(LEGACY / "expected_probs.npy"), atol=1e-5)


@pytest.mark.slow
def test_new_manifests_say_edgeproof(tiny_exports, tmp_path):
    from edgeproof.embedded import read_embedded_manifest

    for fmt in ("tflite-int8", "onnx-fp32"):
        lone = shutil.copy(tiny_exports[fmt], tmp_path / tiny_exports[fmt].name)
        raw = read_embedded_manifest(lone)
        assert raw["producer"] == "edgeproof" and "edgekit_version" not in raw
