"""Export behaviour: artifacts written atomically (a failed replace, a failure mid-write, a
full disk and a folder artifact all leave the old files), option validation, QAT on a
nested model and the --debug-quant report. (The --min-agreement check of `export`:
tests/app/test_export_and_check.py.) Everything here uses the tiny model: slow."""

from __future__ import annotations

import os

import numpy as np
import pytest

from edgeproof.errors import ExportError, UsageError

pytestmark = pytest.mark.slow


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- atomic writes -------------------------------------------------------------------
def _artifact(data: bytes, ctx, files=None):
    from edgeproof.export.artifact import Artifact
    from edgeproof.manifest import Manifest, TensorInfo

    m = Manifest(format="onnx-fp32", class_names=list(ctx.class_names),
                 input=TensorInfo("input", [-1, 16, 16, 1]), output=TensorInfo("probs", [-1, 10]),
                 preprocessing=ctx.preprocessing)
    return Artifact(data, "" if files else ".onnx", m, files=files)


def test_failed_replace_keeps_previous_file(tiny_context, tmp_path, monkeypatch):
    import edgeproof.atomic as atomic
    import edgeproof.export.artifact as artifact

    path = artifact.write_artifact(_artifact(b"old" * 100, tiny_context), tmp_path, "m")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(ExportError, match="No space left"):
        artifact.write_artifact(_artifact(b"new" * 100, tiny_context), tmp_path, "m", force=True)
    assert path.read_bytes() == b"old" * 100
    assert _leftovers(tmp_path) == []


def test_failure_mid_write_leaves_nothing(tiny_context, tmp_path, monkeypatch):
    import edgeproof.atomic as atomic
    import edgeproof.export.artifact as artifact

    def half(path, data):
        with open(path, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic, "_write_fsync", half)
    with pytest.raises(ExportError, match="Input/output error"):
        artifact.write_artifact(_artifact(b"x" * 1000, tiny_context), tmp_path, "m")
    assert list(tmp_path.iterdir()) == []


def test_folder_artifact_is_replaced_atomically(tiny_context, tmp_path, monkeypatch):
    import edgeproof.atomic as atomic
    import edgeproof.export.artifact as artifact
    from edgeproof.manifest import sha256_file

    old = _artifact(b"", tiny_context, files={"saved_model.pb": b"old", "variables/v": b"1"})
    path = artifact.write_artifact(old, tmp_path, "sm")
    assert sha256_file(path) == old.manifest.sha256
    real = os.replace
    calls = []

    def fail_second(src, dst):  # moving the old folder aside works; moving the new one in fails
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", fail_second)
    new = _artifact(b"", tiny_context, files={"saved_model.pb": b"new"})
    with pytest.raises(ExportError, match="Permission denied"):
        artifact.write_artifact(new, tmp_path, "sm", force=True)
    assert (path / "saved_model.pb").read_bytes() == b"old"
    assert (path / "variables" / "v").read_bytes() == b"1"
    assert _leftovers(tmp_path) == []


def test_disk_full_leaves_previous_artifact_intact(tmp_path, monkeypatch, tiny_exports):
    from edgeproof import atomic as art_mod
    from edgeproof.export.artifact import Artifact, write_artifact
    from edgeproof.manifest import find_manifest

    m = find_manifest(tiny_exports["onnx-fp32"])
    write_artifact(Artifact(b"old" * 100, ".onnx", m), tmp_path, "model")

    def full(fd, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(art_mod.os, "fsync", full)
    with pytest.raises(ExportError, match="No space left"):
        write_artifact(Artifact(b"new" * 100, ".onnx", m), tmp_path, "model", force=True)
    assert (tmp_path / "model.onnx").read_bytes() == b"old" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.json"]


def test_existing_artifact_needs_force(tiny_context, tmp_path):
    from edgeproof.export.artifact import write_artifact

    write_artifact(_artifact(b"a", tiny_context), tmp_path, "m")
    with pytest.raises(ExportError, match="--force"):
        write_artifact(_artifact(b"b", tiny_context), tmp_path, "m")


# -- option validation -----------------------------------------------------------------
def test_unknown_option_lists_valid_ones(tiny_model, tiny_context):
    from edgeproof.export.formats import export_model

    with pytest.raises(UsageError, match=r"does not take option\(s\) io_type.*Valid options: activations, calibration, engine, exclude_nodes, mode, opset"):
        export_model(tiny_model, "onnx-int8", tiny_context, {"io_type": "int8"})
    with pytest.raises(UsageError, match="Valid options: none"):
        export_model(tiny_model, "tflite-fp16", tiny_context, {"opset": 13})


def test_bad_choice_and_unknown_format(tiny_model, tiny_context):
    from edgeproof.export.formats import export_model, get_format

    with pytest.raises(UsageError, match="Valid: static, dynamic"):
        export_model(tiny_model, "onnx-int8", tiny_context, {"mode": "weights"})
    with pytest.raises(UsageError, match="Did you mean 'onnx-int8'"):
        get_format("onnx-int9")


def test_qat_options_are_validated(tiny_model, tiny_context):
    from edgeproof.export.formats import export_model

    with pytest.raises(UsageError, match="'epochs' parameter of tflite-qat-int8 must be an int"):
        export_model(tiny_model, "tflite-qat-int8", tiny_context, {"epochs": 0})
    with pytest.raises(UsageError, match="'lr' parameter"):
        export_model(tiny_model, "tflite-qat-int8", tiny_context, {"lr": "fast"})


def test_calibrated_formats_need_calibration(tiny_model, tiny_context):
    import dataclasses

    from edgeproof.export.formats import export_model

    bare = dataclasses.replace(tiny_context, calibration=None, train_images=None)
    for fmt in ("onnx-int8", "tflite-int8", "tflite-qat-int8"):
        with pytest.raises(ExportError, match="--calib"):
            export_model(tiny_model, fmt, bare)


# -- QAT on a nested model --------------------------------------------------------------
def _nested(num_classes=10):
    from edgeproof.tfcompat import keras

    k = keras()
    i = k.Input((16, 16, 1))
    x = k.layers.Conv2D(8, 3, use_bias=False)(i)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.ReLU()(x)
    x = k.layers.Concatenate()([x, k.layers.Conv2D(8, 1, activation="relu")(x)])
    base = k.Model(i, x, name="base")  # a functional base, like a Keras Application
    return k.Sequential([k.Input((16, 16, 1), name="image"), k.layers.Rescaling(1.0), base,
                         k.layers.GlobalAveragePooling2D(),
                         k.layers.Dense(num_classes, activation="softmax")], name="nested")


def test_flatten_model_is_exact():
    from edgeproof.export.qat import flatten_model
    from edgeproof.tfcompat import keras

    model = _nested()
    flat = flatten_model(model)
    assert not any(isinstance(l, keras().Model) for l in flat.layers)
    x = np.random.default_rng(0).random((4, 16, 16, 1), dtype=np.float32)
    np.testing.assert_allclose(flat(x).numpy(), model(x).numpy(), atol=1e-6)


def test_qat_on_nested_model(tiny_context, tiny_dataset, tmp_path):
    from edgeproof.bench.one_artifact import bench_artifact
    from edgeproof.bench.settings import BenchSettings, EvalData
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.context import model_fingerprint
    from edgeproof.export.formats import export_model

    model = _nested()
    before = model_fingerprint(model)
    art = export_model(model, "tflite-qat-int8", tiny_context, {"epochs": 1, "train_size": 128})
    assert model_fingerprint(model) == before, "QAT must not touch the source model"
    assert art.manifest.options["train_images_used"] == 128
    path = write_artifact(art, tmp_path, "nested")
    row, probs = bench_artifact(path, BenchSettings(latency=False),
                                EvalData(tiny_dataset.x_test[:64], tiny_dataset.y_test[:64]))
    assert row.status == "ok", row.error
    assert probs.shape == (64, 10) and row.accuracy is not None


# -- --debug-quant -----------------------------------------------------------------------
def test_debug_quant_writes_csv_and_png(tiny_model, tiny_context, tmp_path):
    import csv

    from edgeproof.export.quant_debug import (COLUMNS, layer_errors, most_sensitive,
                                              write_debug_report)

    rows = layer_errors(tiny_model, tiny_context, limit=8)
    assert rows and set(COLUMNS) <= set(rows[0])
    for r in rows:  # RMSE / scale: the error in quantization steps, from the same row
        scale = float(r["scale"] or 0)
        want = np.sqrt(float(r["mean_squared_error"] or 0)) / scale if scale else float("nan")
        assert r["rmse_over_scale"] == pytest.approx(want, nan_ok=True), r
    assert any(np.isfinite(r["rmse_over_scale"]) for r in rows)
    ranked = most_sensitive(rows)
    assert sorted(ranked) == sorted(r["tensor_name"] for r in rows)
    by_name = {r["tensor_name"]: r["rmse_over_scale"] for r in rows}
    assert [by_name[n] for n in ranked] == sorted(by_name.values(), reverse=True)
    csv_path, png_path = write_debug_report(rows, tmp_path, "tiny-tflite-int8")
    got = list(csv.DictReader(csv_path.open()))
    assert list(got[0]) == list(COLUMNS) and len(got) == len(rows)
    assert [float(g["rmse_over_scale"]) for g in got] == pytest.approx(
        [r["rmse_over_scale"] for r in rows])
    assert png_path.read_bytes()[:4] == b"\x89PNG"
