"""Every registered format, exported from the tiny model: numeric parity with per-format
tolerances, manifests (sidecar and embedded) that round-trip, sha256s that match. Every
format is converted: the module is slow."""

from __future__ import annotations

import shutil

import pytest

from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.export.formats import list_formats

pytestmark = pytest.mark.slow
CHECK = BenchSettings(latency=False)

# Every format the Keras tiny model exports to; the PyTorch-only ones (.pte) have their own
# conformance module (tests/export/test_executorch.py).
ALL = [f.name for f in list_formats() if not f.torch_only]
TORCH_ONLY = [f.name for f in list_formats() if f.torch_only]
# Per-format tolerances against the Keras reference on the tiny test split:
# max_abs = max |p_ref - p| over all probabilities; agreement = top-1 agreement;
# acc_drop = how many accuracy points (fraction) the export may lose.
TOL = {
    "keras": {"max_abs": 1e-5},
    "saved_model": {"max_abs": 1e-5},
    "tflite-fp32": {"max_abs": 1e-4},
    "onnx-fp32": {"max_abs": 1e-4},
    "tflite-fp16": {"agreement": 0.99, "max_abs": 0.02},
    "onnx-fp16": {"agreement": 0.99, "max_abs": 0.02},
    "tflite-dynamic": {"agreement": 0.97, "acc_drop": 0.03},
    "tflite-int16x8": {"agreement": 0.97, "acc_drop": 0.03},
    "tflite-int8": {"agreement": 0.95, "acc_drop": 0.03},
    "onnx-int8": {"agreement": 0.95, "acc_drop": 0.03},
    "openvino-fp32": {"max_abs": 1e-4},
    "openvino-int8": {"agreement": 0.95, "acc_drop": 0.03},
    # QAT fine-tunes (1 epoch here), so it may move away from the reference; it must not
    # lose accuracy beyond a few points.
    "tflite-qat-int8": {"acc_drop": 0.05},
}
OPTIONS = {"tflite-qat-int8": {"epochs": 1, "train_size": 256}}


@pytest.fixture(scope="module")
def exported(tiny_model, tiny_context, tmp_path_factory):
    """{format: (path, artifact)} for every registered format."""
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.formats import export_model

    out = tmp_path_factory.mktemp("all-formats")
    done = {}
    for name in ALL:
        art = export_model(tiny_model, name, tiny_context, OPTIONS.get(name))
        done[name] = (write_artifact(art, out, f"tiny-{name}"), art)
    return done


def test_every_format_has_a_tolerance():
    assert sorted(TOL) == sorted(ALL), "add a tolerance row for each new format"
    assert TORCH_ONLY and all(f.startswith("executorch") for f in TORCH_ONLY), TORCH_ONLY


@pytest.mark.parametrize("fmt", ALL)
def test_parity(fmt, exported, tiny_dataset, tiny_reference):
    from edgeproof.bench.one_artifact import bench_artifact

    path, _ = exported[fmt]
    row, probs = bench_artifact(path, CHECK,
                                EvalData(tiny_dataset.x_test, tiny_dataset.y_test, tiny_reference))
    assert row.status == "ok", row.error
    assert row.format == fmt and probs.shape == tiny_reference.shape
    tol = TOL[fmt]
    if "max_abs" in tol:
        assert row.max_abs_diff <= tol["max_abs"], row
    if "agreement" in tol:
        assert row.top1_agreement >= tol["agreement"], row
    if "acc_drop" in tol:
        assert row.accuracy_delta >= -tol["acc_drop"], row


@pytest.mark.parametrize("fmt", ALL)
def test_sidecar_manifest_round_trip(fmt, exported, tiny_context):
    from edgeproof.manifest import Manifest, find_manifest, manifest_path, sha256_file

    path, art = exported[fmt]
    side = Manifest.load(manifest_path(path))
    assert side == art.manifest == find_manifest(path)
    assert side.sha256 == sha256_file(path)
    assert side.class_names == list(tiny_context.class_names)
    assert side.preprocessing == tiny_context.preprocessing


@pytest.mark.parametrize("fmt", [f.name for f in list_formats() if f.suffix in (".onnx", ".tflite")])
def test_embedded_manifest_without_sidecar(fmt, exported, tmp_path):
    """A lone .onnx/.tflite file still tells a runtime its classes, preprocessing and I/O."""
    from edgeproof.manifest import find_manifest

    path, art = exported[fmt]
    lone = shutil.copy(path, tmp_path / path.name)
    got = find_manifest(lone)
    want = art.manifest
    assert (got.format, got.class_names, got.preprocessing, got.input, got.output) == \
        (want.format, want.class_names, want.preprocessing, want.input, want.output)


def test_int8_manifests_record_quantization(exported):
    for fmt in ("tflite-int8", "tflite-qat-int8"):
        m = exported[fmt][1].manifest
        assert m.input.dtype == "int8" and m.input.quantization["scale"] > 0
        assert m.calibration and m.calibration["n"] > 0
    onnx = exported["onnx-int8"][1].manifest
    assert onnx.input.dtype == "float32" and onnx.options["mode"] == "static"
    assert onnx.calibration["class_balanced"] is True


def test_sizes_shrink(exported):
    size = {f: a.manifest.size_bytes for f, (_, a) in exported.items()}
    for f in ("tflite-int8", "tflite-dynamic", "onnx-int8"):
        assert size[f] < 0.5 * size["tflite-fp32"], (f, size)
    for f in ("tflite-fp16", "onnx-fp16"):
        assert size[f] < 0.7 * size["tflite-fp32"], (f, size)


def test_onnx_int8_dynamic_mode(tiny_model, tiny_context, tiny_dataset, tiny_reference, tmp_path):
    from edgeproof.bench.one_artifact import bench_artifact
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.formats import export_model

    art = export_model(tiny_model, "onnx-int8", tiny_context, {"mode": "dynamic"})
    path = write_artifact(art, tmp_path, "dyn")
    row, _ = bench_artifact(path, CHECK,
                            EvalData(tiny_dataset.x_test, tiny_dataset.y_test, tiny_reference))
    assert row.status == "ok", row.error
    assert row.accuracy_delta >= -0.03 and art.manifest.calibration is None


def test_keras_artifact_loads_in_safe_mode(exported, tiny_model, tiny_dataset):
    import numpy as np

    from edgeproof.keras_loader import load_keras_model

    model = load_keras_model(exported["keras"][0], safe_mode=True)
    x = tiny_dataset.x_test[:8].astype("float32") / 255.0
    np.testing.assert_allclose(model.predict(x, verbose=0), tiny_model.predict(x, verbose=0),
                               atol=1e-6)
