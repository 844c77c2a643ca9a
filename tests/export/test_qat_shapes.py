"""The shape of issue 32 in miniature (a plain tf-keras Sequential: Rescaling; Conv, ReLU,
then BatchNorm after the activation, pooling, twice more; global average pooling; two
Dense): its int8 exports keep the float model's answers above a floor, and
``tflite-qat-int8`` runs on it (it crashed with ``'str' object is not callable``), the
layers tfmot cannot annotate left float and named in one warning line.

The floor: measured on this seeded model when the test was written (tflite-int8 and
onnx-int8 both 99.7% top-1 agreement on the 360 test images of digits at 16x16, one
image lost), set with margin so another CPU's kernels do not trip it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.helpers import ok, run_cli

pytestmark = pytest.mark.slow

AGREEMENT_FLOOR = 0.97  # measured 0.997; a broken export of this shape falls far below


def _issue_shape(ds):
    from edgeproof.tfcompat import keras, set_seed

    k, L = keras(), keras().layers
    set_seed(0)
    m = k.Sequential([
        L.Input(ds.input_shape), L.Rescaling(1 / 255.0, name="rescaling_in"),
        L.Conv2D(8, 5, padding="same", name="conv1"), L.ReLU(name="relu1"),
        L.BatchNormalization(name="bn1"), L.MaxPooling2D(name="pool1"),
        L.Conv2D(12, 3, padding="same", activation="relu", name="conv2"),
        L.BatchNormalization(name="bn2"), L.MaxPooling2D(name="pool2"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv3"),
        L.BatchNormalization(name="bn3"), L.GlobalAveragePooling2D(name="gap"),
        L.Dense(16, activation="relu", name="dense1"),
        L.Dense(ds.num_classes, activation="softmax", name="head")])
    m.compile(k.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    m.fit(ds.x_train.astype(np.float32), ds.y_train, epochs=12, batch_size=32, verbose=0)
    return m


@pytest.fixture(scope="module")
def shape_file(tiny_dataset, tmp_path_factory):
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    path = tmp_path_factory.mktemp("shape") / "shape.keras"
    _issue_shape(tiny_dataset).save(path)
    return path


def test_int8_exports_keep_the_answers_above_the_floor(shape_file, tmp_path):
    out = tmp_path / "rows.json"
    ok(run_cli("export", shape_file, "--format", "tflite-int8,onnx-int8", "--calib", "digits",
               "--out", tmp_path, "--json", out, "--quiet"))
    rows = {r["format"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"tflite-int8", "onnx-int8"}
    for fmt, row in rows.items():
        assert row["status"] == "ok", row
        assert row["accuracy"] - row["accuracy_delta"] > 0.5, row  # the float model learned
        assert row["top1_agreement"] >= AGREEMENT_FLOOR, (fmt, row["top1_agreement"])


def test_qat_runs_on_batchnorm_after_the_activation(shape_file, tmp_path):
    proc = ok(run_cli("export", shape_file, "--format", "tflite-qat-int8", "--calib", "digits",
                      "--out", tmp_path, "--option", "epochs=1", "--option", "train_size=300",
                      "--quiet"))
    assert "Traceback" not in proc.stderr and "not callable" not in proc.stderr
    warned = [ln for ln in proc.stderr.splitlines() if "tfmot cannot annotate" in ln]
    assert len(warned) == 1, proc.stderr  # one line, naming the layers left float
    manifest = json.loads((tmp_path / "shape-tflite-qat-int8.tflite.json").read_text())
    left = manifest["conversion"]["qat_float_layers"]["layers"]
    assert left and all(name in warned[0] for name in left)
    assert "rescaling_in" in left  # tfmot's registry has no Rescaling
    assert (tmp_path / "shape-tflite-qat-int8.tflite").stat().st_size > 0
